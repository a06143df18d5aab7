"""Who is calling: the principal every request acts for.

The service verifies credentials; it runs no login. The authenticator that
`platform/wiring.py` registers as `app.state.authenticator` turns the
credential a request carries into a `Principal`. A route that needs a caller
depends on `PrincipalDep` (401 without a valid credential); one that needs
roles depends on `require_roles(...)` as well (403 without them):

    @router.delete("/{order_id}", dependencies=[Depends(require_roles("admin"))])

Data is scoped by `principal.subject`. Without authentication the service sits
behind a trusted gateway and `AnonymousAuthenticator` makes every request act
for `ANONYMOUS`, who holds no roles: `require_roles("admin")` then answers 403,
and turning authentication on later changes no route and no query.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request

from .errors import ServiceError
from .logging import get_logger
from .openapi import SecurityScheme, answers

if TYPE_CHECKING:
    # Only for the annotation: ratelimit.py builds on this module.
    from .ratelimit import RateLimiter

logger = get_logger(__name__)


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)


ANONYMOUS = Principal(subject="anonymous")


class InvalidCredentialError(Exception):
    """A credential was presented but is not accepted; the message tells the caller why."""


class Authenticator(Protocol):
    """Turns the credential a request carries into a principal."""

    @property
    def security_scheme(self) -> SecurityScheme | None:
        """How the OpenAPI document describes the credential; None when requests carry none."""
        ...

    @property
    def refusals(self) -> frozenset[int]:
        """The statuses authenticating can answer: 401, and 503 if keys can be unavailable."""
        ...

    def challenge(self, *, invalid: bool) -> str:
        """The WWW-Authenticate value a 401 answers with."""
        ...

    async def authenticate(self, request: Request) -> Principal | None:
        """The caller; None when the request carries no credential at all.

        Raises `InvalidCredentialError` for a credential that is present but not valid.
        """
        ...


class AnonymousAuthenticator:
    """Every request acts for `ANONYMOUS`: the service sits behind a trusted gateway."""

    security_scheme = None
    refusals: frozenset[int] = frozenset()

    def challenge(self, *, invalid: bool) -> str:
        return "None"

    async def authenticate(self, request: Request) -> Principal | None:
        return ANONYMOUS


@answers(credentials="optional")
async def authenticate(request: Request) -> Principal | None:
    """The verified caller, or None for a request without a credential (401 for a bad one).

    Each refused credential counts against the client's address; an address
    over RATE_LIMIT_AUTH_FAILURES gets 429 before its credential is checked.
    """
    authenticator: Authenticator = request.app.state.authenticator
    limiter: RateLimiter = request.app.state.rate_limiter
    await limiter.refuse_guessing_address(request)
    try:
        return await authenticator.authenticate(request)
    except InvalidCredentialError as error:
        logger.info("credential_refused", reason=str(error), path=request.url.path)
        await limiter.count_refused_credential(request)
        raise ServiceError(
            401,
            "invalid_credentials",
            str(error),
            headers={"WWW-Authenticate": authenticator.challenge(invalid=True)},
        ) from None


OptionalPrincipalDep = Annotated[Principal | None, Depends(authenticate)]


@answers(credentials="required")
async def current_principal(request: Request, principal: OptionalPrincipalDep) -> Principal:
    if principal is None:
        authenticator: Authenticator = request.app.state.authenticator
        raise ServiceError(
            401,
            "not_authenticated",
            "This needs credentials.",
            headers={"WWW-Authenticate": authenticator.challenge(invalid=False)},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only a caller holding every one of `roles` (else 403)."""
    needed = frozenset(roles)

    @answers(403)
    async def check_roles(principal: PrincipalDep) -> Principal:
        missing = needed - principal.roles
        if missing:
            raise ServiceError(
                403,
                "forbidden",
                "The caller lacks a role this needs.",
                {"missing_roles": sorted(missing)},
            )
        return principal

    return check_roles
