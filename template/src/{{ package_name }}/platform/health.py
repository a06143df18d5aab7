"""Liveness, readiness and metrics endpoints.

/livez answers while the process can serve at all; /readyz runs every
registered readiness check (database, broker, ...) and answers 503 with each
check's result when one fails, so the orchestrator stops routing traffic here
until the dependency is back; /metrics is the Prometheus exposition.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel

from .errors import error_response
from .metrics import ScrapeSamples
from .openapi import error_responses

ReadinessCheck = Callable[[], Awaitable[None]]
"""An async callable that returns when the dependency is usable and raises otherwise."""

MAX_ERROR_LENGTH = 200


class ReadinessChecks:
    """The named checks /readyz runs, concurrently, each with a timeout."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._checks: dict[str, ReadinessCheck] = {}

    def add(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def run(self) -> dict[str, dict[str, str]]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(self._checks[name]) for name in names))
        return dict(zip(names, results, strict=True))

    async def _run_one(self, check: ReadinessCheck) -> dict[str, str]:
        try:
            await asyncio.wait_for(check(), self.timeout_seconds)
        except TimeoutError:
            return {"status": "failing", "error": f"no answer within {self.timeout_seconds}s"}
        except Exception as exc:  # a failing check is a result, not an error
            return {"status": "failing", "error": f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]}
        return {"status": "ok"}


class CheckResult(BaseModel):
    status: Literal["ok", "failing"]
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, CheckResult]


class Liveness(BaseModel):
    status: Literal["ok"]


METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The Prometheus text exposition.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def readiness_checks(app: FastAPI) -> ReadinessChecks:
    """The app's readiness checks, for platform modules that add one."""
    checks: ReadinessChecks = app.state.readiness_checks
    return checks


def health_router(
    checks: ReadinessChecks, registry: CollectorRegistry, samples: ScrapeSamples
) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/livez", summary="Liveness")
    async def livez() -> Liveness:
        return Liveness(status="ok")

    # 503 `not_ready`; its details hold each check's result.
    @router.get(
        "/readyz",
        summary="Readiness",
        response_model=Readiness,
        response_model_exclude_none=True,
        responses=error_responses(503),
    )
    async def readyz() -> Any:
        results = await checks.run()
        if all(result["status"] == "ok" for result in results.values()):
            return {"status": "ready", "checks": results}
        failing = sorted(name for name, result in results.items() if result["status"] != "ok")
        return error_response(
            503,
            "not_ready",
            f"Not ready: {', '.join(failing)} failing.",
            {"checks": results},
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses=METRICS_RESPONSE,
    )
    async def metrics() -> Response:
        await samples.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
