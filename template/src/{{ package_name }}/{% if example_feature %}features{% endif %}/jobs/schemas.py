"""What the jobs API accepts and answers."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...platform.validation import StorableJsonObject, StorableText
from .handlers import HANDLERS
from .models import JobStatus

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def known_kinds(schema: dict[str, Any]) -> None:
    """List the registered kinds in the OpenAPI document, read when it is built."""
    schema["enum"] = sorted(HANDLERS)


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: StorableText = Field(
        description="Which handler runs the job.",
        examples=["echo"],
        json_schema_extra=known_kinds,
    )
    # Refused unless stored and read back unchanged: see platform/validation.py.
    payload: StorableJsonObject = Field(
        default_factory=dict,
        description=(
            "The handler's input: a JSON object without NUL characters or unpaired surrogates,"
            " with numbers within +/-(2**53 - 1), at most 32 levels deep and 64 KiB."
        ),
    )
    max_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in HANDLERS:
            raise ValueError(f"unknown job kind; known kinds: {', '.join(sorted(HANDLERS))}")
        return kind


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    next_run_at: datetime
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class JobPage(BaseModel):
    items: list[JobRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
