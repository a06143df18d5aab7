"""What each kind of job does. Register the service's own handlers in HANDLERS.

A handler gets the job's payload and returns its result; raising marks the
attempt failed, and the worker retries it with backoff. Handlers must be
idempotent: a job whose worker died mid-run is run again.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

JobHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class JobFailedError(Exception):
    """A handler's way of saying the attempt failed, with a message for the job."""


async def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload}


async def sleep(payload: dict[str, Any]) -> dict[str, Any]:
    seconds = float(payload.get("seconds", 1.0))
    await asyncio.sleep(seconds)
    return {"slept_seconds": seconds}


async def fail(payload: dict[str, Any]) -> dict[str, Any]:
    raise JobFailedError(str(payload.get("message", "the job was asked to fail")))


HANDLERS: dict[str, JobHandler] = {"echo": echo, "sleep": sleep, "fail": fail}
