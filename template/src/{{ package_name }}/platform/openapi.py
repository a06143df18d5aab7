"""The OpenAPI document states every answer a route can give, errors included.

FastAPI documents a route's success and its own validation error. The rest
is derived here from what the route depends on, so generated clients and
contract tests see every status the service really answers:

- a dependency marked with `answers(...)` adds its statuses: the database
  session 503, a publisher 503, `rate_limit(...)` 429, `require_roles(...)` 403;
- a dependency that reads credentials adds what the app's authenticator can
  refuse with (401, and 503 when its keys cannot be had) and lists the
  authenticator's security scheme under the operation's `security`;
- any parameter or body adds 422, a body 400 and 413, and every operation 500.

All of them carry the error envelope (`ErrorEnvelope`). A route declares
only what its own logic answers, in one line:

    @router.get("/{order_id}", responses=error_responses(404))
"""

import json
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Protocol, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from .errors import ErrorEnvelope

ENVELOPE_SCHEMA_NAME = ErrorEnvelope.__name__
ENVELOPE_REF = f"#/components/schemas/{ENVELOPE_SCHEMA_NAME}"

# What each error status means for any route; a route's own description wins.
ERROR_DESCRIPTIONS = {
    400: "The body cannot be read: it is not text in the declared encoding.",
    401: "No valid credentials: the credential is missing, malformed, expired or not accepted.",
    403: "The caller lacks a role this needs.",
    404: "Not found.",
    409: "Conflicts with the current state of the resource.",
    413: "The request body is larger than the service accepts.",
    422: "The request is not valid: the details name each invalid field.",
    429: "Too many requests from this caller; retry after `Retry-After` seconds.",
    500: "An unexpected error; it is logged with the request id.",
    503: "A dependency (database, broker, identity provider) is unavailable; try again.",
}

Credentials = Literal["optional", "required"]
Dependency = TypeVar("Dependency", bound=Callable[..., Any])


@dataclass(frozen=True)
class SecurityScheme:
    """An OpenAPI security scheme: its name in `components.securitySchemes` and its definition."""

    name: str
    definition: Mapping[str, Any]


@dataclass(frozen=True)
class DependencyAnswers:
    status_codes: frozenset[int]
    credentials: Credentials | None


class DescribedAuthenticator(Protocol):
    """What the document needs from `app.state.authenticator`."""

    @property
    def security_scheme(self) -> SecurityScheme | None:
        """How a request carries its credential; None when requests carry none."""
        ...

    @property
    def refusals(self) -> frozenset[int]:
        """The statuses authenticating a request can answer with."""
        ...


# Weak keys: a dependency made per route (require_roles, rate_limit) goes with its route.
_DEPENDENCY_ANSWERS: "weakref.WeakKeyDictionary[Callable[..., Any], DependencyAnswers]" = (
    weakref.WeakKeyDictionary()
)


def answers(
    *status_codes: int, credentials: Credentials | None = None
) -> Callable[[Dependency], Dependency]:
    """Mark a dependency with the error statuses it answers; every route using it documents them.

    `credentials` marks a dependency that reads the request's credential: the
    route then documents the authenticator's refusals and its security scheme,
    as `required` or `optional`.
    """

    def mark(dependency: Dependency) -> Dependency:
        _DEPENDENCY_ANSWERS[dependency] = DependencyAnswers(frozenset(status_codes), credentials)
        return dependency

    return mark


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own errors, each with the error envelope."""
    return {
        status_code: {"model": ErrorEnvelope, "description": error_description(status_code)}
        for status_code in status_codes
    }


def envelope_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": ENVELOPE_REF}}}


def error_description(status_code: int) -> str:
    if status_code in ERROR_DESCRIPTIONS:
        return ERROR_DESCRIPTIONS[status_code]
    return HTTPStatus(status_code).phrase + "."


def marked_answers(call: Callable[..., Any] | None) -> DependencyAnswers | None:
    try:
        return _DEPENDENCY_ANSWERS.get(call) if call is not None else None
    except TypeError:  # a callable that takes no weak reference was never marked
        return None


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _takes_input(dependant: Dependant) -> bool:
    return any(
        (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.body_params,
        )
    )


@dataclass(frozen=True)
class RouteContract:
    """The error statuses a route can answer and the credentials it reads."""

    status_codes: frozenset[int]
    credentials: Credentials | None


def route_contract(
    route: RouteContext, authenticator: DescribedAuthenticator | None
) -> RouteContract:
    """What `route` can answer, derived from its dependencies and its inputs."""
    status_codes = {500}
    credentials: Credentials | None = None
    takes_input = _takes_input(route.dependant)
    for dependency in _dependencies(route.dependant):
        takes_input = takes_input or _takes_input(dependency)
        marked = marked_answers(dependency.call)
        if marked is None:
            continue
        status_codes |= marked.status_codes
        if marked.credentials is not None and authenticator is not None:
            status_codes |= authenticator.refusals
            if authenticator.security_scheme is not None and credentials != "required":
                credentials = marked.credentials
    if takes_input:
        status_codes.add(422)
    if route.body_field is not None:
        # FastAPI answers 400 for a body it cannot decode; 422 for one that is not valid JSON.
        status_codes |= {400, 413}
    return RouteContract(frozenset(status_codes), credentials)


def document_errors(app: FastAPI, schema: dict[str, Any]) -> None:
    """Add each route's error answers and security requirement to `schema`, in place."""
    authenticator: DescribedAuthenticator | None = getattr(app.state, "authenticator", None)
    security = authenticator.security_scheme if authenticator is not None else None
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault(
        ENVELOPE_SCHEMA_NAME,
        ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}"),
    )
    _hoist_definitions(components["schemas"])
    # Routes in context: an included router's prefix and dependencies apply.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        contract = route_contract(route, authenticator)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status_code in sorted(contract.status_codes):
                response = responses.setdefault(
                    str(status_code), {"description": error_description(status_code)}
                )
                if status_code == 422:
                    # FastAPI documents its own validation body; the service answers the envelope.
                    response["description"] = error_description(422)
                    response.pop("content", None)
                response.setdefault("content", envelope_content())
            if security is not None and contract.credentials is not None:
                requirement: list[dict[str, list[str]]] = [{security.name: []}]
                if contract.credentials == "optional":
                    requirement.append({})
                operation["security"] = requirement
    if security is not None:
        components.setdefault("securitySchemes", {})[security.name] = dict(security.definition)
    _drop_unused_validation_schemas(schema)


def _hoist_definitions(schemas: dict[str, Any]) -> None:
    """Move nested `$defs` (the envelope's ErrorDetail) up to the components."""
    envelope = schemas[ENVELOPE_SCHEMA_NAME]
    for name, definition in envelope.pop("$defs", {}).items():
        schemas.setdefault(name, definition)


def _drop_unused_validation_schemas(schema: dict[str, Any]) -> None:
    """Drop FastAPI's own 422 schemas: the service answers the envelope instead."""
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` document the error answers and the security scheme.

    The document is built on first request, once the service has added its
    routers and the authenticator is wired, and rebuilt when routes change.
    """
    generate = app.openapi
    documented: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal documented
        schema = generate()
        if schema is not documented:
            document_errors(app, schema)
            documented = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
