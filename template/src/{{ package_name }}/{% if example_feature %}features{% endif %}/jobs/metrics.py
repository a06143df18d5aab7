"""The jobs' metrics: outcomes counted where they happen, the backlog read at scrape time.

Counters are process-wide: the API counts creations, whichever process runs
a job counts its outcome, and each process's /metrics exports its own.
The `kind` label takes the registered handlers' names only, so its values
are bounded. The backlog gauges are read from the table when the API is
scraped, so they stay right however many workers run.
"""

from datetime import datetime

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ...platform.db import database_sample, utc_now
from ...platform.metrics import GaugeSample, process_wide
from .handlers import HANDLERS
from .models import Job, JobStatus
from .repository import due_condition

_OUTCOMES = {
    "created": "Jobs created, by kind.",
    "succeeded": "Jobs that succeeded, by kind.",
    "failed": "Jobs that failed for good (no attempt left), by kind.",
    "retried": "Failed attempts scheduled to run again, by kind.",
}
_counters = {
    outcome: process_wide(Counter(f"jobs_{outcome}", help_text, ["kind"], registry=None))
    for outcome, help_text in _OUTCOMES.items()
}
# Every kind is exported at zero from the start, so rates and alerts see it before it counts.
for _counter in _counters.values():
    for _kind in HANDLERS:
        _counter.labels(_kind)


def count_job(outcome: str, kind: str) -> None:
    """Count one job's `outcome` (created, succeeded, failed or retried)."""
    _counters[outcome].labels(kind if kind in HANDLERS else "unknown").inc()


@database_sample
async def sample_jobs(session: AsyncSession) -> list[GaugeSample]:
    """Running and due jobs, and how long the oldest due one has waited."""
    now = utc_now()
    running = await session.scalar(
        select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING)
    )
    due, oldest = (
        await session.execute(
            select(func.count(), func.min(Job.next_run_at)).where(due_condition(now))
        )
    ).one()
    return [
        GaugeSample("jobs_running", "Jobs a worker is running now.", running or 0),
        GaugeSample("jobs_due", "Jobs due to run that no worker has taken yet.", due),
        GaugeSample(
            "jobs_oldest_due_age_seconds",
            "How long the longest-waiting due job has been due; 0 when none is.",
            _age(oldest, now),
        ),
    ]


def _age(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())
