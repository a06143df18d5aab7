"""Builds the app: the one place the service is wired together.

Register the service's routers here; platform concerns (logging, metrics,
health, errors, tracing) come from `build_app`.
"""

from fastapi import FastAPI

from .platform.application import build_app
from .settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = build_app(settings)
    # app.include_router(orders.router, prefix="/api/v1")
    return app
