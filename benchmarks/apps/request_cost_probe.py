"""CPU time per request, in process: the ASGI app called directly, no server and no socket.

Runs in a rendered service's environment (its root as the working directory)
and measures GET /livez through: the bare app; the service's app with its
platform middleware removed; the service's app with one platform layer at a
time; and the full stack. Apps are measured in interleaved rounds and the
fastest round counts: on a shared machine the minimum is the figure least
disturbed by other work. Writes microseconds per request as JSON to --output.

Logging is configured once per process (structlog's configuration is
global), so `--log-level WARNING`, which drops the access log line, measures
the full stack alone in a process of its own.

    python request_cost_probe.py --package orders_api --output cost.json [--log-level WARNING]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bare_app import build_app
from fastapi import FastAPI

Scope = dict[str, Any]
App = Callable[..., Any]
PLATFORM_LAYERS = ("RequestMiddleware", "SecurityHeadersMiddleware", "BodySizeLimitMiddleware")
SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/livez",
    "raw_path": b"/livez",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"GET /livez answered {message['status']}")


async def seconds_for(app: App, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await app({**SCOPE, "state": {}}, receive, send)
    return time.perf_counter() - started


def layer_name(layer: object) -> str:
    return getattr(layer, "__name__", "")


def service_apps(package: str, log_level: str) -> dict[str, App]:
    create_app: Callable[..., FastAPI] = importlib.import_module(f"{package}.app").create_app
    settings_module = importlib.import_module(f"{package}.settings")

    def app(layers: Sequence[str] | None) -> FastAPI:
        service = create_app(settings_module.Settings(log_level=log_level))
        if layers is not None:
            kept = [m for m in service.user_middleware if layer_name(m.cls) in layers]
            service.user_middleware = kept
        return service

    if log_level != "INFO":
        return {f"service (full stack), LOG_LEVEL={log_level}": app(None)}
    return {
        "bare FastAPI": build_app(None),
        "service, no platform middleware": app(()),
        **{f"service + {layer} only": app((layer,)) for layer in PLATFORM_LAYERS},
        "service (full stack)": app(None),
    }


async def measure(apps: dict[str, App], rounds: int, requests: int) -> dict[str, float]:
    for app in apps.values():
        await seconds_for(app, requests)
    fastest = dict.fromkeys(apps, float("inf"))
    for _ in range(rounds):
        for name, app in apps.items():
            fastest[name] = min(fastest[name], await seconds_for(app, requests))
    return {name: seconds / requests * 1e6 for name, seconds in fastest.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000, help="requests per app per round")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    apps = service_apps(args.package, args.log_level)
    micros = asyncio.run(measure(apps, args.rounds, args.requests))
    args.output.write_text(json.dumps(micros, indent=2))


if __name__ == "__main__":
    main()
