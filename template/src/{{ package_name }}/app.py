"""Builds the app: register the service's routers here.

The platform concerns (logging, metrics, health, errors, tracing) and what
the template's answers chose (database, broker, authentication) come from
`build_service_app`, so a `copier update` that changes them leaves this file
alone. Routes opt in to a caller with `PrincipalDep` and `require_roles(...)`
from `platform/auth.py`.
"""

from fastapi import FastAPI

from .platform.wiring import build_service_app
from .settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    app = build_service_app(settings or get_settings())
    # Register the service's routers here, e.g.
    # app.include_router(orders.router, prefix="/api/v1")
    return app
