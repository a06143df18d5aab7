"""A team's revisions go on the service's chain, and pass the service's checks as written.

The platform's tables migrate on their own branch (`platform`), so a rendered
service with a broker has two heads. This renders such a service, adds a
model as a team would, and runs Alembic the way the service's docs say:
the new revision must land in `migrations/versions/` after the service's
previous head (or start the service's chain), and ruff, mypy --strict,
`migrate` and `alembic check` must all pass without touching it. A merge of
two heads of the service's chain must type-check too.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from matrix import Variant, all_variants, render
from suite import SYNC, service_environment

TIMEOUT_SECONDS = 600
ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
RUN_ON_POSTGRES = """
import asyncio, sys
import asyncpg

async def main() -> None:
    connection = await asyncpg.connect(sys.argv[1])
    await connection.execute(sys.argv[2])
    await connection.close()

asyncio.run(main())
"""

TEAM_MODEL = '''"""Orders: the team's own table."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .platform.db import Base, UtcDateTime, utc_now


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
'''


def variant(database: str, example_feature: bool) -> Variant:
    """A variant with a broker (so the platform's branch exists) and no auth."""
    for candidate in all_variants():
        answers = dict(candidate.answers)
        if (
            answers["database"] == database
            and answers["broker"] != "none"
            and answers["example_feature"] is example_feature
            and answers["auth"] == "none"
        ):
            return candidate
    raise LookupError(f"no variant with {database}, a broker, example_feature={example_feature}")


CASES = [
    # The example feature's jobs revision, "0001", is the service's head.
    pytest.param("sqlite", True, "0001", id="sqlite-example-feature"),
    # No revision of the service's own yet: the new one starts its chain.
    pytest.param("postgresql", False, None, id="postgresql-no-example-feature"),
]


def run(service: Path, *command: str, env: dict[str, str]) -> str:
    completed = subprocess.run(
        ["uv", "run", "--no-sync", *command],
        cwd=service,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


@contextmanager
def service_database(service: Path, database: str, env: dict[str, str]) -> Iterator[str]:
    """A new, empty database for the service; its URL is yielded, and it is dropped after."""
    if database == "sqlite":
        yield f"sqlite+aiosqlite:///{service / 'service.db'}"
        return
    name = f"test_layout_{uuid.uuid4().hex[:12]}"
    admin = ADMIN_URL.replace("+asyncpg", "")
    run(service, "python", "-c", RUN_ON_POSTGRES, admin, f'CREATE DATABASE "{name}"', env=env)
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        run(service, "python", "-c", RUN_ON_POSTGRES, admin, drop, env=env)


def field(revision_file: Path, name: str) -> str:
    """A module-level assignment of a revision file, as written."""
    match = re.search(rf"^{name}: .* = (.+)$", revision_file.read_text(), re.MULTILINE)
    assert match, f"no {name} in {revision_file}"
    return match.group(1)


def service_heads(service: Path, env: dict[str, str]) -> list[str]:
    heads = run(service, "alembic", "heads", env=env).splitlines()
    return [line.split()[0] for line in heads if line and "(platform)" not in line]


def add_team_model(package: Path) -> None:
    """The team's edit: a model in a module of its own, imported in models.py."""
    (package / "orders.py").write_text(TEAM_MODEL)
    models = package / "models.py"
    text = models.read_text()
    base_import = "from .platform.db import Base\n"
    assert text.count(base_import) == 1
    text = text.replace(base_import, f"from .orders import Order\n{base_import}")
    text = re.sub(r"__all__ = \[(.*)\]", r'__all__ = [\1, "Order"]', text)
    models.write_text(text)


@pytest.mark.parametrize(("database", "example_feature", "previous_head"), CASES)
def test_a_teams_revision_goes_on_its_chain_and_passes_the_checks(
    database: str, example_feature: bool, previous_head: str | None, tmp_path: Path
) -> None:
    service = render(tmp_path / "service", variant(database, example_feature).data)
    package = service / "src" / "orders_api"
    versions = package / "migrations" / "versions"
    env = service_environment()
    subprocess.run(SYNC[1], cwd=service, env=env, check=True, timeout=TIMEOUT_SECONDS)
    with service_database(service, database, env) as url:
        env["DATABASE_URL"] = url
        run(service, "python", "-m", "orders_api", "migrate", env=env)
        add_team_model(package)
        before = set(versions.glob("*.py"))

        run(service, "alembic", "revision", "--autogenerate", "-m", "add orders", env=env)

        written = set(versions.glob("*.py")) - before
        assert len(written) == 1, f"expected one new revision in {versions}, found {written}"
        revision_file = written.pop()
        expected = "None" if previous_head is None else repr(previous_head).replace("'", '"')
        assert field(revision_file, "down_revision") == expected
        assert "op.create_table(" in revision_file.read_text()

        # A second head on the service's chain (a branch merged in, say), then
        # the merge the docs describe.
        side = ("--head", previous_head or "base", "--splice", "--version-path", str(versions))
        run(service, "alembic", "revision", "-m", "side", *side, env=env)
        heads = service_heads(service, env)
        assert len(heads) == 2, heads
        run(service, "alembic", "merge", "-m", "merge the service heads", *heads, env=env)
        merge_file = next(versions.glob("*merge_the_service_heads.py"))
        assert field(merge_file, "down_revision").startswith("(")

        run(service, "ruff", "check", "--no-cache", ".", env=env)
        run(service, "ruff", "format", "--check", "--no-cache", ".", env=env)
        run(service, "mypy", env=env)
        run(service, "python", "-m", "orders_api", "migrate", env=env)
        run(service, "alembic", "check", env=env)
        assert len(service_heads(service, env)) == 1
