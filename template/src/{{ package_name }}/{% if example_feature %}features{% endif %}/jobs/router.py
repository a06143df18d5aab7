"""HTTP routes of the jobs feature: parse, call the service, shape the answer."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from ...platform.auth import PrincipalDep
from ...platform.db import SessionDep
from .schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, JobCreate, JobPage, JobRead
from .service import JobService

router = APIRouter(prefix="/jobs", tags=["jobs"])


def get_service(session: SessionDep) -> JobService:
    return JobService(session)


ServiceDep = Annotated[JobService, Depends(get_service)]
IdempotencyKey = Annotated[
    str,
    Header(
        min_length=1,
        max_length=200,
        description="Repeat a request with the same key to get the same job back.",
    ),
]


@router.post(
    "",
    status_code=201,
    responses={200: {"description": "The job this key already created"}},
)
async def create_job(
    body: JobCreate,
    idempotency_key: IdempotencyKey,
    response: Response,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JobRead:
    job, created = await service.create(principal.subject, idempotency_key, body)
    if not created:
        response.status_code = 200
    return JobRead.model_validate(job)


@router.get("")
async def list_jobs(
    service: ServiceDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    page = await service.page(principal.subject, limit, cursor)
    return JobPage(
        items=[JobRead.model_validate(job) for job in page.jobs], next_cursor=page.next_cursor
    )


@router.get("/{job_id}")
async def get_job(job_id: uuid.UUID, service: ServiceDep, principal: PrincipalDep) -> JobRead:
    return JobRead.model_validate(await service.get(principal.subject, job_id))


@router.post("/{job_id}/cancel")
async def cancel_job(job_id: uuid.UUID, service: ServiceDep, principal: PrincipalDep) -> JobRead:
    return JobRead.model_validate(await service.cancel(principal.subject, job_id))
