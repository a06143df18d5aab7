"""The floor: the bare app with the usual features as Starlette BaseHTTPMiddleware layers.

Request id, access log (structlog, one JSON line per request), Prometheus
metrics and security headers, each written the way most templates write
them: one `BaseHTTPMiddleware` subclass per concern.

    python layered_app.py --port 8002 [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from bare_app import arguments, build_app, serve
from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter("http_requests", "HTTP requests.", ["method", "route", "status"])
DURATION = Histogram("http_request_duration_seconds", "Request duration.", ["method", "route"])
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ],
    logger_factory=structlog.PrintLoggerFactory(),
    cache_logger_on_first_use=True,
)
access_log = structlog.get_logger("access")


def route_of(request: Request) -> str:
    route: Any = request.scope.get("route")
    return getattr(route, "path", "<unmatched>")


class RequestIdMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        response.headers["x-request-id"] = request_id
        return response


class AccessLogMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        access_log.info(
            "request",
            method=request.method,
            route=route_of(request),
            path=request.url.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return response


class MetricsMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = route_of(request)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        DURATION.labels(request.method, route).observe(time.perf_counter() - started)
        return response


class SecurityHeadersMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def build_layered_app(database_url: str | None) -> FastAPI:
    app = build_app(database_url)
    for layer in (
        MetricsMiddleware,
        AccessLogMiddleware,
        RequestIdMiddleware,
        SecurityHeadersMiddleware,
    ):
        app.add_middleware(layer)
    return app


if __name__ == "__main__":
    args = arguments()
    serve(build_layered_app(args.database_url), args.port)
