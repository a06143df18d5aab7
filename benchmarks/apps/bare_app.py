"""The ceiling: a bare FastAPI app serving the benchmark's routes, with nothing else.

It runs in a rendered service's own environment, so FastAPI, uvicorn and the
database driver are the versions the service pins, and uvicorn is configured
as the service's `serve` configures it. Tracing is off, as it is in a service
without an OTLP endpoint.

    python bare_app.py --port 8001 [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException

NO_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}


def build_app(database_url: str | None) -> FastAPI:
    app = FastAPI(telemetry=NO_TELEMETRY)

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    if database_url is not None:
        add_job_route(app, database_url)
    return app


def add_job_route(app: FastAPI, database_url: str) -> None:
    """GET /api/v1/jobs/{job_id}: one row, read with the service's driver and pool size.

    SQLAlchemy is imported here, so that the start-up benchmark's bare app,
    which has no database, does not import it.
    """
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url, pool_size=5, max_overflow=10)
    select_job = text("SELECT * FROM jobs WHERE id = :job_id")

    @app.get("/api/v1/jobs/{job_id}")
    async def read_job(job_id: uuid.UUID) -> dict[str, Any]:
        async with engine.connect() as connection:
            row = (await connection.execute(select_job, {"job_id": job_id})).first()
        if row is None:
            raise HTTPException(404)
        return dict(row._mapping)


def serve(app: FastAPI, port: int) -> None:
    """uvicorn with the settings the service's platform/server.py uses."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
        timeout_graceful_shutdown=20,
    )
    uvicorn.Server(config).run()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", help="serve GET /api/v1/jobs/{job_id} from this database")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    serve(build_app(args.database_url), args.port)
