"""The platform half of the app: logging, telemetry, error tracking, middleware, errors, health."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from .error_tracking import start_error_tracking
from .errors import install_error_handlers
from .health import ReadinessChecks, health_router
from .logging import configure_logging, get_logger
from .metrics import HttpMetrics, ScrapeSamples, latency_buckets
from .middleware import (
    BodySizeLimitMiddleware,
    BodyTimeoutMiddleware,
    RequestMiddleware,
    SecurityHeadersMiddleware,
)
from .openapi import install_openapi
from .settings import PlatformSettings
from .telemetry import build_tracer_provider, fastapi_telemetry

logger = get_logger(__name__)


class Resource(Protocol):
    """Something the app holds open: checked by /readyz, closed at shutdown.

    It is reachable as `app.state.<name>`.
    """

    name: str

    async def check(self) -> None: ...

    async def close(self) -> None: ...


def service_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0.0.0"


def build_app(settings: PlatformSettings, resources: Sequence[Resource] = ()) -> FastAPI:
    """A FastAPI app with every platform concern wired; the service adds its routers."""
    configure_logging(settings.log_level)
    start_error_tracking(settings, "api")
    tracer_provider = build_tracer_provider(settings)
    metrics = HttpMetrics(buckets=latency_buckets(settings.slo_latency_seconds))
    scrape_samples = ScrapeSamples()
    metrics.registry.register(scrape_samples)
    checks = ReadinessChecks(settings.readiness_timeout_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info("startup", service=settings.service_name, environment=settings.environment)
        try:
            yield
        finally:
            for resource in reversed(resources):
                await resource.close()
            if tracer_provider is not None:
                tracer_provider.shutdown()
            logger.info("shutdown", service=settings.service_name)

    docs = settings.serve_docs
    app = FastAPI(
        title=settings.service_name,
        version=service_version(settings.service_name),
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        telemetry=fastapi_telemetry(tracer_provider),
    )
    # None when tracing is off; the database and HTTP clients are traced with it.
    app.state.tracer_provider = tracer_provider
    app.state.readiness_checks = checks
    app.state.metrics_registry = metrics.registry
    app.state.scrape_samples = scrape_samples
    for resource in resources:
        setattr(app.state, resource.name, resource)
        checks.add(resource.name, resource.check)
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router(checks, metrics.registry, scrape_samples))

    # add_middleware wraps: the last one added runs first on the way in.
    if settings.gzip_enabled:
        app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_size)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(BodyTimeoutMiddleware, timeout_seconds=settings.request_body_timeout_seconds)
    app.add_middleware(RequestMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts_enabled)
    return app
