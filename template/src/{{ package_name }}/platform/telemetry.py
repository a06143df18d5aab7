"""OpenTelemetry tracing: requests through FastAPI's own instrumentation, and the rest.

Tracing is on when an OTLP endpoint is configured and costs nothing
otherwise: FastAPI skips its telemetry entirely when it has no provider, and
the database, outbound HTTP and messaging spans are only wired when there is
one. Every process (`serve`, `relay`, `worker`) builds its own provider from
the same settings and shuts it down, flushing its spans, when it stops.

A trace crosses the broker in the event envelope: `traceparent` and
`tracestate` (W3C Trace Context) are written into it when the event is
encoded, in the request that wrote it, and the relay's publish and the
consumer's handling continue that trace.
"""

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from .settings import PlatformSettings

if TYPE_CHECKING:
    # The SDK and the exporter are imported only when tracing is on: a process
    # without an OTLP endpoint starts without them.
    from opentelemetry.sdk.trace import TracerProvider

# Probes and scrapes would drown the traces that matter.
UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})

# The envelope fields that carry a trace from the producer to its consumers.
TRACE_CONTEXT_FIELDS = ("traceparent", "tracestate")
propagator = TraceContextTextMapPropagator()


def parse_headers(raw: str) -> dict[str, str]:
    """'key=value,key2=value2', the OTEL_EXPORTER_OTLP_HEADERS format."""
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def build_tracer_provider(settings: PlatformSettings) -> "TracerProvider | None":
    if not settings.otel_exporter_otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    headers = settings.otel_exporter_otlp_headers
    exporter = OTLPSpanExporter(
        endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces",
        headers=parse_headers(headers.get_secret_value()) if headers else None,
    )
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": settings.service_name,
                "deployment.environment.name": settings.environment,
            }
        ),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_traces_sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def get_tracer(provider: "TracerProvider | None", name: str) -> trace.Tracer | None:
    """`provider`'s tracer for the module `name`; None when tracing is off."""
    return None if provider is None else provider.get_tracer(name)


def _is_untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def fastapi_telemetry(provider: "TracerProvider | None") -> TelemetryConfig:
    """FastAPI's telemetry settings: request spans only; metrics are Prometheus'."""
    if provider is None:
        return {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
    return {
        "tracer_provider": provider,
        "tracing": True,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
        "exclude": _is_untraced,
    }


def current_trace_context() -> dict[str, str]:
    """The current span's `traceparent` and `tracestate`; empty outside a span."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        propagator.inject(carrier)
    return carrier


@contextmanager
def continued_span(
    tracer: trace.Tracer,
    name: str,
    kind: trace.SpanKind,
    carrier: Mapping[str, str],
    attributes: Attributes = None,
) -> Iterator[None]:
    """A span in the trace `carrier` names, or in a new one."""
    with tracer.start_as_current_span(
        name, context=propagator.extract(carrier), kind=kind, attributes=attributes
    ):
        yield


class InTraceTracer:
    """A tracer's `start_span` that starts spans only inside a trace, never a trace of its own.

    For database queries: without it, every relay poll and worker sweep would
    send a one-span trace of its SELECT.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        if not trace.get_current_span().get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self.tracer.start_span(name, *args, **kwargs)
