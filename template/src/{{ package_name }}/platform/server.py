"""The HTTP server: uvicorn, configured from settings."""

import uvicorn
from fastapi import FastAPI

from .settings import PlatformSettings


def serve(app: FastAPI, settings: PlatformSettings, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests and stop."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Logging is configured by the app; uvicorn's lines go through it.
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
    )
    uvicorn.Server(config).run()
