"""Error tracking with Sentry, off unless SENTRY_DSN is set.

Each process (the API, the worker, the relay) calls `start_error_tracking`
as it starts. Once on, Sentry gets what no code handled: an exception a
request was answered 500 for, a job that failed for good, an event whose
handler failed its last attempt, a process that crashed. Answers the service
gives on purpose (a 4xx, a 503 while the database is away) are not errors.
Traces go to OpenTelemetry, so Sentry's own tracing, profiling and sessions
stay off.

Each event is tagged with the request id and, while tracing is on, the trace
id, which lead to the event's log lines and trace. Nothing personal is sent:
no cookies, user or client address, no request bodies, no local variables of
stack frames (they hold headers and secrets); headers and query parameters
whose names look sensitive are filtered.

Unset, `sentry_sdk` is never imported, and reporting an error costs one check.
"""

from typing import TYPE_CHECKING, Literal

from opentelemetry import trace
from structlog.contextvars import get_contextvars

from .settings import PlatformSettings

if TYPE_CHECKING:
    from sentry_sdk.integrations import Integration
    from sentry_sdk.types import Event, Hint

Process = Literal["api", "worker", "relay"]
# Request headers that carry a client's address or user name, left out as Sentry's
# send_default_pii=False leaves them out (sensitive names are left out anyway).
ADDRESS_HEADERS = ["forwarded", "-ip", "remote-", "via", "-user"]

_enabled = False


def add_request_and_trace_ids(event: "Event", _: "Hint") -> "Event":
    """Tag an event with the request id and the trace id current where it was captured."""
    tags = event.setdefault("tags", {})
    request_id = get_contextvars().get("request_id")
    if request_id is not None:
        tags["request_id"] = str(request_id)
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        tags["trace_id"] = format(context.trace_id, "032x")
    return event


def start_error_tracking(settings: PlatformSettings, process: Process) -> None:
    """Send this process's unhandled errors to Sentry when SENTRY_DSN is set."""
    global _enabled
    dsn = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn is not None else ""
    if not dsn:
        return
    import sentry_sdk

    from .application import service_version

    integrations: list[Integration] = []
    if process == "api":
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration

        # For the request's method, URL and route on each event. They report no
        # answer on their own: the request middleware reports unhandled exceptions.
        integrations = [
            StarletteIntegration(transaction_style="url", failed_request_status_codes=set()),
            FastApiIntegration(transaction_style="url", failed_request_status_codes=set()),
        ]
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=f"{settings.service_name}@{service_version(settings.service_name)}",
        integrations=integrations,
        # Nothing patched behind the service's back (HTTP clients, Redis, SQL).
        auto_enabling_integrations=False,
        # Nothing personal: no user or client address, cookies, bodies, local
        # variables of frames; headers and query parameters named like secrets
        # or addresses are filtered.
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "denylist", "terms": ADDRESS_HEADERS}},
            "http_bodies": [],
            "url_query_params": {"mode": "denylist"},
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
            "database_query_data": False,
            "queues": False,
            "stack_frame_variables": False,
        },
        max_request_body_size="never",
        traces_sample_rate=None,
        auto_session_tracking=False,
        send_client_reports=False,
        # No Sentry trace headers on outgoing requests: OpenTelemetry propagates traces.
        trace_propagation_targets=[],
        before_send=add_request_and_trace_ids,
    )
    sentry_sdk.get_global_scope().set_tag("process", process)
    _enabled = True


def stop_error_tracking() -> None:
    """Send the events still queued, then report nothing more; tests turn it off this way."""
    global _enabled
    if not _enabled:
        return
    import sentry_sdk

    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_global_scope().remove_tag("process")
    _enabled = False


def report_exception(error: BaseException, **tags: str) -> None:
    """Send `error` to Sentry with `tags`, when error tracking is on."""
    if not _enabled:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tags(tags)
        scope.capture_exception(error)
