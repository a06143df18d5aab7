"""Queries on the jobs table. Every read a caller can reach is scoped by owner."""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Job, JobStatus


def due_condition(now: datetime) -> ColumnElement[bool]:
    """Pending and past its run time, or running with an expired lease (its worker died)."""
    return or_(
        and_(Job.status == JobStatus.PENDING, Job.next_run_at <= now),
        and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now),
    )


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, job: Job) -> None:
        self.session.add(job)

    async def get(self, owner: str, job_id: uuid.UUID) -> Job | None:
        return await self.session.scalar(select(Job).where(Job.id == job_id, Job.owner == owner))

    async def lock(self, owner: str, job_id: uuid.UUID) -> Job | None:
        """The job, locked until the transaction ends, so a worker cannot finish it meanwhile."""
        return await self.session.scalar(
            select(Job).where(Job.id == job_id, Job.owner == owner).with_for_update()
        )

    async def get_by_idempotency_key(self, owner: str, key: str) -> Job | None:
        return await self.session.scalar(
            select(Job).where(Job.owner == owner, Job.idempotency_key == key)
        )

    async def page(
        self, owner: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Job]:
        """Newest first; `after` is the (created_at, id) of the previous page's last job."""
        query = select(Job).where(Job.owner == owner)
        if after is not None:
            created_at, job_id = after
            query = query.where(
                or_(
                    Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id)
                )
            )
        query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        return list(await self.session.scalars(query))

    async def lock_next_due(self, now: datetime) -> Job | None:
        """The next job to run, locked; other workers skip it (PostgreSQL).

        Due means pending and past its run time, or running with an expired
        lease (its worker died).
        """
        query = (
            select(Job)
            .where(due_condition(now))
            .order_by(Job.next_run_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return await self.session.scalar(query)

    async def lock_by_id(self, job_id: uuid.UUID) -> Job | None:
        """The job, whoever owns it, locked until the transaction ends (workers only)."""
        return await self.session.scalar(select(Job).where(Job.id == job_id).with_for_update())

    async def lock_lost(self, now: datetime, quiet_since: datetime, limit: int) -> list[Job]:
        """Due jobs that nothing has touched since `quiet_since`, locked; others skip them.

        Due as in `lock_next_due`. A retry whose time has come is taken at once
        (it changed before it was due); anything else only once quiet, so that
        a message still on its way is not sent twice.
        """
        query = (
            select(Job)
            .where(
                or_(
                    and_(
                        Job.status == JobStatus.PENDING,
                        Job.next_run_at <= now,
                        or_(Job.updated_at < Job.next_run_at, Job.updated_at <= quiet_since),
                    ),
                    and_(
                        Job.status == JobStatus.RUNNING,
                        Job.lease_expires_at < now,
                        Job.updated_at <= quiet_since,
                    ),
                )
            )
            .order_by(Job.next_run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(await self.session.scalars(query))

    async def lock_held(self, job_id: uuid.UUID, worker_id: str) -> Job | None:
        """The job, locked, if this worker still holds it."""
        return await self.session.scalar(
            select(Job)
            .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING)
            .with_for_update()
        )
