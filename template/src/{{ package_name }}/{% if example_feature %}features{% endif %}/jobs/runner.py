"""Running a claimed job: the lease, the heartbeat, the outcome, the retry policy.

A claim takes a lease on the job row; while the handler runs, a heartbeat
extends it. A worker that dies stops renewing, and once the lease expires
the job can be claimed again (so handlers must be idempotent). A failure is
retried with exponential backoff and full jitter until `max_attempts`, then
the job is FAILED for good. When the worker is asked to stop, the job in hand
gets a grace period to finish and is otherwise handed back; a handed-back
attempt does not count.
"""

import asyncio
import os
import random
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ...platform.db import Database, utc_now
from ...platform.error_tracking import report_exception
from ...platform.logging import get_logger
from ...platform.validation import UnstorableValueError, check_storable_json, storable_text
from ...settings import Settings
from .handlers import HANDLERS, JobHandler
from .metrics import count_job
from .models import Job, JobStatus
from .repository import JobRepository

logger = get_logger(__name__)
MAX_ERROR_LENGTH = 2000
# A result is bounded more loosely than a payload: a handler may wrap its payload, as `echo` does.
MAX_RESULT_DEPTH = 64
MAX_RESULT_BYTES = 1_048_576


class UnstorableResultError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the handler's result cannot be stored: {reason}")


@dataclass(frozen=True)
class WorkerPolicy:
    poll_interval_seconds: float = 1.0
    lease_seconds: float = 30.0
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    shutdown_grace_seconds: float = 20.0


def policy_from(settings: Settings) -> WorkerPolicy:
    return WorkerPolicy(
        poll_interval_seconds=settings.jobs_poll_interval_seconds,
        lease_seconds=settings.jobs_lease_seconds,
        retry_base_seconds=settings.jobs_retry_base_seconds,
        retry_max_seconds=settings.jobs_retry_max_seconds,
        shutdown_grace_seconds=settings.jobs_shutdown_grace_seconds,
    )


def retry_delay(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, base * 2^(attempt-1))]."""
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    job_id: uuid.UUID
    kind: str
    payload: dict[str, object]
    attempt: int
    max_attempts: int


class JobRunner:
    """Claims job rows and runs them; subclasses decide where claims come from."""

    def __init__(
        self,
        database: Database,
        policy: WorkerPolicy,
        handlers: Mapping[str, JobHandler] = HANDLERS,
        worker_id: str | None = None,
    ) -> None:
        self.database = database
        self.policy = policy
        self.handlers = handlers
        self.worker_id = worker_id or new_worker_id()

    async def take(self, session: AsyncSession, job: Job, now: datetime) -> Claim | None:
        """Claim a locked, due job for this worker (committing), or None if it cannot run.

        A RUNNING job is due when its lease expired; if that was its last
        attempt, it is FAILED instead.
        """
        if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
            job.last_error = "the worker running the last attempt stopped responding"
            job.locked_by = None
            job.move_to(JobStatus.FAILED)
            await self.record_outcome(session, job)
            await session.commit()
            count_job("failed", job.kind)
            logger.warning("job_failed", job_id=str(job.id), reason="lease expired")
            return None
        if job.status == JobStatus.PENDING:
            job.move_to(JobStatus.RUNNING)
        job.attempts += 1
        job.locked_by = self.worker_id
        job.lease_expires_at = now + timedelta(seconds=self.policy.lease_seconds)
        claim = Claim(job.id, job.kind, dict(job.payload), job.attempts, job.max_attempts)
        await session.commit()
        return claim

    async def record_outcome(self, session: AsyncSession, job: Job) -> None:
        """Called in the transaction that finishes a job; a subclass may add to it."""

    async def run_claimed(self, claim: Claim, stop: asyncio.Event) -> None:
        log = logger.bind(job_id=str(claim.job_id), kind=claim.kind, attempt=claim.attempt)
        log.info("job_started", worker_id=self.worker_id)
        handler = self.handlers.get(claim.kind)
        execution = asyncio.ensure_future(self._execute(handler, claim))
        heartbeat = asyncio.ensure_future(self._heartbeat(claim))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({execution, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not execution.done():
                # Shutting down: let the job finish within the grace period, else hand it back.
                done, _ = await asyncio.wait(
                    {execution}, timeout=self.policy.shutdown_grace_seconds
                )
                if not done:
                    execution.cancel()
                    await asyncio.gather(execution, return_exceptions=True)
                    await self._release(claim)
                    log.info("job_released")
                    return
            error = execution.exception()
            if error is None:
                if await self._succeed(claim, execution.result()):
                    log.info("job_succeeded")
                else:
                    log.info("job_result_discarded", reason="cancelled or taken over")
            else:
                await self._fail(claim, error)
        finally:
            for task in (heartbeat, stopping):
                task.cancel()
            await asyncio.gather(heartbeat, stopping, return_exceptions=True)

    async def _execute(self, handler: JobHandler | None, claim: Claim) -> dict[str, object]:
        if handler is None:
            raise LookupError(f"no handler for job kind {claim.kind!r}")
        result = await handler(dict(claim.payload))
        # A result that could not be stored and read back fails the attempt, as an error would.
        if not isinstance(result, dict):
            raise UnstorableResultError(f"a {type(result).__name__}, not a JSON object")
        try:
            check_storable_json(result, max_depth=MAX_RESULT_DEPTH, max_bytes=MAX_RESULT_BYTES)
        except UnstorableValueError as error:
            raise UnstorableResultError(str(error)) from error
        return result

    async def _heartbeat(self, claim: Claim) -> None:
        interval = self.policy.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.database.sessions() as session:
                    job = await JobRepository(session).lock_held(claim.job_id, self.worker_id)
                    if job is None:
                        return
                    job.lease_expires_at = utc_now() + timedelta(seconds=self.policy.lease_seconds)
                    await session.commit()
            except Exception:
                # Missing one renewal is harmless; the lease outlasts two more tries.
                logger.warning("lease_renewal_failed", job_id=str(claim.job_id), exc_info=True)

    async def _succeed(self, claim: Claim, result: dict[str, object]) -> bool:
        async with self.database.sessions() as session:
            job = await JobRepository(session).lock_held(claim.job_id, self.worker_id)
            if job is None:  # cancelled, or taken over after a lost lease
                return False
            job.result = result
            job.last_error = None
            job.locked_by = None
            job.move_to(JobStatus.SUCCEEDED)
            await self.record_outcome(session, job)
            await session.commit()
            count_job("succeeded", job.kind)
            return True

    async def _fail(self, claim: Claim, error: BaseException) -> None:
        message = storable_text(f"{type(error).__name__}: {error}")[:MAX_ERROR_LENGTH]
        async with self.database.sessions() as session:
            job = await JobRepository(session).lock_held(claim.job_id, self.worker_id)
            if job is None:
                return
            job.last_error = message
            job.locked_by = None
            retrying = job.attempts < job.max_attempts
            if retrying:
                delay = retry_delay(
                    job.attempts, self.policy.retry_base_seconds, self.policy.retry_max_seconds
                )
                job.next_run_at = utc_now() + timedelta(seconds=delay)
                job.lease_expires_at = None
                job.move_to(JobStatus.PENDING)
                logger.warning(
                    "job_retry_scheduled", job_id=str(job.id), error=message, delay_seconds=delay
                )
            else:
                job.move_to(JobStatus.FAILED)
                await self.record_outcome(session, job)
                logger.error("job_failed", job_id=str(job.id), error=message)
                report_exception(error, job_kind=job.kind, job_id=str(job.id))
            await session.commit()
            count_job("retried" if retrying else "failed", job.kind)

    async def _release(self, claim: Claim) -> None:
        async with self.database.sessions() as session:
            job = await JobRepository(session).lock_held(claim.job_id, self.worker_id)
            if job is None:
                return
            # Not the job's fault: the attempt does not count.
            job.attempts -= 1
            job.locked_by = None
            job.lease_expires_at = None
            job.next_run_at = utc_now()
            job.move_to(JobStatus.PENDING)
            await session.commit()
