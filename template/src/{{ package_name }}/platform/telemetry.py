"""OpenTelemetry tracing through FastAPI's own instrumentation.

Tracing is on when an OTLP endpoint is configured and costs nothing
otherwise: FastAPI skips its telemetry entirely when it has no provider.
"""

from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from .settings import PlatformSettings

# Probes and scrapes would drown the traces that matter.
UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


def parse_headers(raw: str) -> dict[str, str]:
    """'key=value,key2=value2', the OTEL_EXPORTER_OTLP_HEADERS format."""
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def build_tracer_provider(settings: PlatformSettings) -> TracerProvider | None:
    if not settings.otel_exporter_otlp_endpoint:
        return None
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


def _is_untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def fastapi_telemetry(provider: TracerProvider | None) -> TelemetryConfig:
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
