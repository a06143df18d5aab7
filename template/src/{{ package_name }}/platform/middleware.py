"""Pure ASGI middleware.

Each class is a plain ASGI app that wraps the next one: Starlette's
request/response base class for middleware would cost a task and a memory
stream on every request.
"""

import asyncio
import re
from os import urandom
from time import perf_counter

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from .error_tracking import report_exception
from .errors import error_response, status_code_name
from .logging import access_log, get_logger
from .metrics import HttpMetrics

REQUEST_ID_HEADER = b"x-request-id"
# An incoming request id is kept only if it is short and plain; otherwise a new one is made.
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"

error_log = get_logger("errors")


def route_template(scope: Scope) -> str:
    """The matched route's path template as mounted, such as `/api/v1/jobs/{job_id}`.

    The access log, the metrics and the rate limits all label requests with
    it: it names the route, never a path parameter's value. `scope["route"]`
    alone is not enough, because FastAPI includes a router by reference: its
    routes keep their own paths (`/jobs/{job_id}`), shared by every prefix the
    router is included under. FastAPI keeps the route as included, prefixes
    and all, in its part of the scope, and a mounted app's prefix is the part
    of `root_path` the mount added (`app_root_path` holds the server's own).
    """
    route = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    included = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(included, "path_format", None)
    if not isinstance(path, str):
        path = getattr(route, "path_format", getattr(route, "path", None))
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    root_path: str = scope.get("root_path", "")
    mount_prefix = root_path.removeprefix(scope.get("app_root_path", root_path))
    return mount_prefix + path


def new_request_id() -> str:
    """A random UUID (version 4) in hex, like `uuid4().hex` without building a UUID object."""
    octets = bytearray(urandom(16))
    octets[6] = octets[6] & 0x0F | 0x40  # version 4
    octets[8] = octets[8] & 0x3F | 0x80  # the RFC 4122 variant
    return octets.hex()


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if VALID_REQUEST_ID.fullmatch(value) else None
    return None


class RequestMiddleware:
    """Request id, access log, metrics and the last-resort 500, in one pass.

    These four share the response status and the clock, so they live in one
    layer: every extra ASGI layer costs throughput on every request.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = incoming_request_id(scope) or new_request_id()
        request_id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        tokens = bind_contextvars(request_id=request_id)
        started_at = perf_counter()
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as error:
            error_log.exception("unhandled_exception", method=scope["method"], path=scope["path"])
            report_exception(error)
            if response_started:
                raise
            response = error_response(500, "internal_error", "An internal error occurred.")
            await response(scope, receive, send_with_request_id)
        finally:
            duration = perf_counter() - started_at
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status, duration)
            access_log.request(
                scope["method"], route, scope["path"], status, round(duration * 1000, 3)
            )
            reset_contextvars(**tokens)


class SecurityHeadersMiddleware:
    """Headers that stop browsers sniffing, framing or leaking referrers.

    The interactive docs load scripts and styles, so they skip the strict
    Content-Security-Policy that suits a JSON API.
    """

    BASE_HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    )
    API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
    HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
    DOCS_PATHS = ("/docs", "/redoc")

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.headers = [*self.BASE_HEADERS, *((self.HSTS,) if hsts else ())]
        self.api_headers = [*self.headers, self.API_CSP]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(self.DOCS_PATHS)
        extra = self.headers if docs else self.api_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestBodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodySizeLimitMiddleware:
    """Refuse request bodies over a size limit with 413.

    A declared Content-Length over the limit is refused before reading; a
    chunked body is counted as it arrives. The error is an HTTPException, so
    the app's handler renders the envelope when the route was reading the body.
    A body the server frames by a Content-Length within the limit, or an HTTP/1
    request without a body, is passed through uncounted.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared_length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await self._refuse(scope, receive, send)
                    return
                declared_length = value
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and self._bounded_by_framing(declared_length, scope):
            await self.app(scope, receive, send)
            return

        received = 0
        response_started = False

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLarge(limit)
            return message

        async def send_tracking_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_tracking_start)
        except RequestBodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    @staticmethod
    def _bounded_by_framing(declared_length: bytes | None, scope: Scope) -> bool:
        """Whether the HTTP framing alone keeps the body within the limit, so it needs no count.

        Called once no declared length is over the limit. The server stops a
        body at its declared length; HTTP/1 frames a request body only by
        Content-Length or Transfer-Encoding, so without either there is none.
        """
        if declared_length is not None:
            return declared_length.isdigit()
        return str(scope.get("http_version", "1.1")).startswith("1")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = RequestBodyTooLarge(self.max_body_bytes)
        response = error_response(413, status_code_name(413), str(error.detail))
        await response(scope, receive, send)


class RequestBodyTimedOut(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"The request body was not received within {seconds:g} seconds.")


def declares_body(scope: Scope) -> bool:
    """Whether the request has a body: HTTP/1 frames one only by Content-Length or chunks."""
    if not str(scope.get("http_version", "1.1")).startswith("1"):
        return True
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
        for name, value in scope["headers"]
    )


class BodyTimeoutMiddleware:
    """Answer 408 when a request body has not arrived in full within a time limit.

    One deadline covers the whole body, from when the headers are in, so a
    client sending a byte at a time cannot stretch it. The error is an
    HTTPException, so the app's handler renders the envelope when the route
    was reading the body. A response that starts before the body has been
    read in full closes the connection: the unread rest would otherwise keep
    it open, and be read as the start of the next request.
    """

    CONNECTION_CLOSE = (b"connection", b"close")

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not declares_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        body_complete = False
        response_started = False

        async def receive_before_deadline() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestBodyTimedOut(self.timeout_seconds) from None
            body_complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def send_closing_on_unread_body(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                if not body_complete:
                    message["headers"] = [*message.get("headers", ()), self.CONNECTION_CLOSE]
            await send(message)

        try:
            await self.app(scope, receive_before_deadline, send_closing_on_unread_body)
        except RequestBodyTimedOut as error:
            if response_started:
                raise
            response = error_response(
                408, status_code_name(408), str(error.detail), headers={"connection": "close"}
            )
            await response(scope, receive, send)
