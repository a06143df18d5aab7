"""The edits a service team makes, at every extension point the template documents.

A team adds a feature package with its router registered in `app.py`, a
model imported in `models.py` and a migration for it, an event contract and
its handler where there is a broker, a setting, an `.env.example` entry, a
README section and a test. The update tests make these edits in a rendered
service, update it, and check that every one of them is still there.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from matrix import TEMPLATE_ROOT
from releases import commit, git

RUFF = str(Path(sys.executable).parent / "ruff")

FEATURE_PACKAGE = '"""Orders: the team\'s own feature."""\n'
ROUTER = '''"""The orders API."""

from fastapi import APIRouter

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("/count")
async def count_orders() -> dict[str, int]:
    return {"count": 0}
'''
MODEL = '''"""The orders table."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ...platform.db import Base


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
'''
MIGRATION_REVISION = "5e1f0c0ffee1"
MIGRATION = '''"""Add orders.

Revision ID: {revision}
Revises: {down_revision}
Create Date: 2026-12-06 12:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "{revision}"
down_revision: str | Sequence[str] | None = {down_literal}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("reference", name=op.f("uq_orders_reference")),
    )


def downgrade() -> None:
    op.drop_table("orders")
'''
EVENTS = '''"""What the orders feature announces."""

from ...platform.events import Event


class OrderPlaced(Event):
    """An order was placed."""

    type = "order.placed"
    version = 1

    reference: str
'''
HANDLERS = '''"""How the orders feature reacts to events."""

from ...platform.events import Message
from .events import OrderPlaced


async def handle_order_placed(message: Message[OrderPlaced]) -> None:
    """Nothing to do yet: a placed order is recorded where it was placed."""
'''
HANDLER_REGISTRATION = "    worker.on(OrderPlaced, handle_order_placed)"
TEST = """import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_the_team_route_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/orders/count")
    assert response.json() == {"count": 0}
"""
SETTING = "    orders_page_size: int = 50\n"
ENV_ENTRY = "# How many orders a page of the orders API holds.\nORDERS_PAGE_SIZE=50\n"
README_SECTION = "\n## Orders\n\nHow the orders team runs this service.\n"
# A team starting features/ writes what the template would seed there.
SEEDED_FEATURES_PACKAGE = next(
    (TEMPLATE_ROOT / "template" / "src").glob("*/*features*/__init__.py")
).read_text()


@dataclass(frozen=True)
class Service:
    """A rendered service checkout and its answers."""

    root: Path

    @property
    def answers(self) -> dict[str, Any]:
        answers: dict[str, Any] = yaml.safe_load((self.root / ".copier-answers.yml").read_text())
        return answers

    @property
    def package(self) -> Path:
        return self.root / "src" / str(self.answers["package_name"])

    @property
    def feature(self) -> Path:
        return self.package / "features" / "orders"

    @property
    def has_database(self) -> bool:
        return bool(self.answers["database"] != "none")

    @property
    def has_broker(self) -> bool:
        return bool(self.answers["broker"] != "none")

    @property
    def has_worker(self) -> bool:
        return bool(self.answers.get("worker"))


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))


def add_import(path: Path, line: str) -> None:
    """Add an import the way a team's editor does: anywhere, then sorted by ruff."""
    lines = path.read_text().splitlines(keepends=True)
    first_relative = next(index for index, text in enumerate(lines) if text.startswith("from ."))
    lines.insert(first_relative, f"{line}\n")
    path.write_text("".join(lines))
    tidy(path)


def tidy(path: Path) -> None:
    """Sort imports and format with the service's own ruff settings."""
    for command in (["check", "--fix", "--select", "I,RUF022"], ["format"]):
        subprocess.run(
            [RUFF, *command, "--quiet", "--no-cache", str(path)], cwd=path.parent, check=True
        )


def revision_of(script: Path) -> tuple[str, str | None]:
    """A migration script's revision and the one it follows, read as Alembic reads them."""
    values: dict[str, Any] = {}
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    values[target.id] = ast.literal_eval(node.value)
    return values["revision"], values.get("down_revision")


def team_head(service: Service) -> str | None:
    """The revision the team's next migration follows: the head of the service's own chain."""
    revisions = dict(map(revision_of, (service.package / "migrations" / "versions").glob("*.py")))
    followed = set(revisions.values())
    heads = [revision for revision in revisions if revision not in followed]
    assert len(heads) <= 1, f"the service's chain has several heads: {heads}"
    return heads[0] if heads else None


@dataclass(frozen=True)
class Edited:
    """Which of the edits a service got: those its answers had extension points for."""

    model: bool
    event: bool
    handler: bool

    @classmethod
    def for_service(cls, service: Service) -> Edited:
        return cls(
            model=service.has_database,
            event=service.has_broker,
            handler=service.has_broker and service.has_worker,
        )


def make_team_edits(root: Path) -> Edited:
    """Every documented extension point, edited as a team would; committed."""
    service = Service(root)
    edited = Edited.for_service(service)
    features = service.package / "features"
    features.mkdir(exist_ok=True)
    if not (features / "__init__.py").exists():
        (features / "__init__.py").write_text(SEEDED_FEATURES_PACKAGE)
    service.feature.mkdir()
    (service.feature / "__init__.py").write_text(FEATURE_PACKAGE)
    (service.feature / "router.py").write_text(ROUTER)
    app = service.package / "app.py"
    replace_once(
        app,
        "    return app\n",
        '    app.include_router(orders_router, prefix="/api/v1")\n    return app\n',
    )
    add_import(app, "from .features.orders.router import router as orders_router")

    if edited.model:
        (service.feature / "models.py").write_text(MODEL)
        models = service.package / "models.py"
        if "__all__ = [" in models.read_text():
            replace_once(models, "__all__ = [", '__all__ = ["Order", ')
        add_import(models, "from .features.orders.models import Order")
        down_revision = team_head(service)
        down_literal = "None" if down_revision is None else f'"{down_revision}"'
        migration = (
            service.package / "migrations" / "versions" / f"{MIGRATION_REVISION}_add_orders.py"
        )
        migration.write_text(
            MIGRATION.format(
                revision=MIGRATION_REVISION,
                down_revision=down_revision or "",
                down_literal=down_literal,
            ).replace("Revises: \n", "Revises:\n")
        )

    if edited.event:
        (service.feature / "events.py").write_text(EVENTS)
        (service.feature / "handlers.py").write_text(HANDLERS)
        events = service.package / "events.py"
        with events.open("a") as file:
            file.write("registry.publishes(OrderPlaced)\nregistry.consumes(OrderPlaced)\n")
        add_import(events, "from .features.orders.events import OrderPlaced")
        if edited.handler:
            worker = service.package / "worker.py"
            register_handler(worker)
            add_import(worker, "from .features.orders.events import OrderPlaced")
            add_import(worker, "from .features.orders.handlers import handle_order_placed")

    settings = service.package / "settings.py"
    replace_once(
        settings,
        '    """Platform settings plus the service\'s own."""\n',
        f'    """Platform settings plus the service\'s own."""\n\n{SETTING}',
    )
    with (service.root / ".env.example").open("a") as file:
        file.write(ENV_ENTRY)
    with (service.root / "README.md").open("a") as file:
        file.write(README_SECTION)
    (service.root / "tests" / "test_orders.py").write_text(TEST)
    git(service.root, "add", "-A")
    commit(service.root, "The team's own work")
    return edited


def register_handler(worker: Path) -> None:
    """Register the handler where the service's release says to."""
    text = worker.read_text()
    if "def register(worker: Worker)" in text:
        worker.write_text(f"{text}{HANDLER_REGISTRATION}\n")
        return
    # Before 0.4.0 the worker built its consumer itself: a handler went after it.
    built = text.index("    consumer = Consumer(")
    end = text.index("\n    )\n", built) + len("\n    )\n")
    registration = HANDLER_REGISTRATION.replace("worker.on(", "consumer.on(")
    worker.write_text(f"{text[:end]}{registration}\n{text[end:]}")


def assert_team_edits_kept(root: Path, edited: Edited | None = None) -> None:
    """Every edit `make_team_edits` made is still there (by default: all its answers allow)."""
    service = Service(root)
    edited = edited or Edited.for_service(service)
    assert (service.feature / "router.py").read_text() == ROUTER
    app = (service.package / "app.py").read_text()
    assert "from .features.orders.router import router as orders_router" in app
    assert 'app.include_router(orders_router, prefix="/api/v1")' in app
    if edited.model:
        assert (service.feature / "models.py").read_text() == MODEL
        assert (
            "from .features.orders.models import Order"
            in (service.package / "models.py").read_text()
        )
        assert list((service.package / "migrations" / "versions").glob(f"{MIGRATION_REVISION}_*"))
    if edited.event:
        events = (service.package / "events.py").read_text()
        assert "registry.publishes(OrderPlaced)" in events
        assert (service.feature / "handlers.py").read_text() == HANDLERS
    if edited.handler:
        assert HANDLER_REGISTRATION in (service.package / "worker.py").read_text()
    assert SETTING in (service.package / "settings.py").read_text()
    assert (service.root / ".env.example").read_text().endswith(ENV_ENTRY)
    assert (service.root / "README.md").read_text().endswith(README_SECTION)
    assert (service.root / "tests" / "test_orders.py").read_text() == TEST
