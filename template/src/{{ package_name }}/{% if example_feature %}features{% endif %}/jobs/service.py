"""The jobs API's logic: idempotent creation, paging, cancelling. Commits happen here."""

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ...platform.errors import ServiceError
from .models import FINAL_STATUSES, Job, JobStatus
from .repository import JobRepository
from .schemas import JobCreate


def fingerprint(request: JobCreate) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ServiceError(422, "invalid_cursor", "The cursor is not one this API gave.") from error


def job_not_found(job_id: uuid.UUID) -> ServiceError:
    # The same answer whether the job does not exist or is someone else's.
    return ServiceError(404, "job_not_found", f"No job {job_id}.")


@dataclass
class Page:
    jobs: list[Job]
    next_cursor: str | None


class JobService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.jobs = JobRepository(session)

    async def create(
        self, owner: str, idempotency_key: str, request: JobCreate
    ) -> tuple[Job, bool]:
        """The job for this key: (job, True) when created now, (job, False) when repeated."""
        request_fingerprint = fingerprint(request)
        existing = await self.jobs.get_by_idempotency_key(owner, idempotency_key)
        if existing is None:
            job = Job(
                owner=owner,
                idempotency_key=idempotency_key,
                request_fingerprint=request_fingerprint,
                kind=request.kind,
                payload=request.payload,
                max_attempts=request.max_attempts,
            )
            self.jobs.add(job)
            try:
                await self.session.commit()
            except IntegrityError:
                # A concurrent request with the same key won the race; answer with its job.
                await self.session.rollback()
                existing = await self.jobs.get_by_idempotency_key(owner, idempotency_key)
                if existing is None:
                    raise
            else:
                return job, True
        if existing.request_fingerprint != request_fingerprint:
            raise ServiceError(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
                {"job_id": str(existing.id)},
            )
        return existing, False

    async def get(self, owner: str, job_id: uuid.UUID) -> Job:
        job = await self.jobs.get(owner, job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    async def page(self, owner: str, limit: int, cursor: str | None) -> Page:
        after = decode_cursor(cursor) if cursor else None
        jobs = await self.jobs.page(owner, limit + 1, after)
        has_more = len(jobs) > limit
        jobs = jobs[:limit]
        return Page(jobs, encode_cursor(jobs[-1]) if has_more else None)

    async def cancel(self, owner: str, job_id: uuid.UUID) -> Job:
        job = await self.jobs.lock(owner, job_id)
        if job is None:
            raise job_not_found(job_id)
        if job.status in FINAL_STATUSES:
            raise ServiceError(
                409, "job_finished", f"The job already finished as {job.status}.", None
            )
        job.move_to(JobStatus.CANCELLED)
        job.locked_by = None
        await self.session.commit()
        return job
