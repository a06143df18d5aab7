"""Who is calling: the principal every request acts for.

With no authentication configured the service sits behind a trusted gateway
and every request acts for one fixed principal; data is still scoped by
`principal.subject`, so turning authentication on changes no query.
"""

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)


ANONYMOUS = Principal(subject="anonymous")


async def current_principal() -> Principal:
    return ANONYMOUS


PrincipalDep = Annotated[Principal, Depends(current_principal)]
