"""One error envelope for every 4xx and 5xx answer.

    {"error": {"code": "not_found", "message": "...", "details": ...}}

`code` is a stable, machine-readable string; `message` is for people;
`details` carries structured context (validation errors, failed checks) or null.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. `not_found`.")
    message: str = Field(description="For people; may change between versions.")
    details: Any = Field(description="Structured context (invalid fields, failed checks), or null.")


class ErrorEnvelope(BaseModel):
    """The body of every 4xx and 5xx answer, as the OpenAPI document describes it."""

    error: ErrorDetail


class ServiceError(Exception):
    """An error the service raises on purpose; rendered as the envelope."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


# Codes whose phrase differs between Python versions, fixed here.
STATUS_CODE_NAMES = {413: "content_too_large", 422: "unprocessable_content"}


def status_code_name(status_code: int) -> str:
    """`not_found` for 404: the default code for a bare HTTP status."""
    if status_code in STATUS_CODE_NAMES:
        return STATUS_CODE_NAMES[status_code]
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render HTTP, validation and service errors as the envelope.

    Unhandled exceptions are caught earlier, by the request middleware, which
    logs the traceback with the request id and answers a bare 500 envelope.
    """

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, str):
            message, details = exc.detail, None
        else:
            message, details = HTTPStatus(exc.status_code).phrase, exc.detail
        return error_response(
            exc.status_code, status_code_name(exc.status_code), message, details, exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Field locations and reasons only: echoing the input could leak secrets.
        fields = [
            {"location": list(error["loc"]), "message": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        return error_response(422, "validation_error", "The request is not valid.", fields)
