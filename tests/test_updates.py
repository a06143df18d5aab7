"""`copier update`: from every release to HEAD, with the edits a team makes.

Copier exits 0 even when it leaves conflicts, so every test looks for itself:
no conflict markers, no .rej files, no unmerged paths.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml
from matrix import Variant, all_variants, covering, covering_variants, update
from matrix import render as render_template
from release import Release
from releases import (
    build_template_repository,
    commit,
    commit_new_repository,
    git,
    latest_changed_release,
    offered_at,
    releases,
    working_tree_files,
)
from suite import (
    MIGRATION_TESTS,
    SYNC,
    Timing,
    resolved_lock,
    run_service_checks,
    run_steps,
    service_environment,
)
from team import MIGRATION_REVISION, assert_team_edits_kept, make_team_edits, replace_once

COPIER = str(Path(sys.executable).parent / "copier")
FLEET_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fleet.py"
CONFLICT_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)
# A service checkout's files, by path, as text.
Tree = dict[str, str]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "release_variant" in metafunc.fixturenames:
        every = metafunc.config.getoption("--all-variants")
        cases = []
        for release in releases():
            offered = tuple(v for v in all_variants() if offered_at(release, v))
            cases += [(release, v) for v in (offered if every else covering(offered))]
        metafunc.parametrize("release_variant", cases, ids=[f"{r.tag}-{v.id}" for r, v in cases])


@pytest.fixture(scope="session")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template_repository(tmp_path_factory.mktemp("template") / "repository")


def render(template: Path, service: Path, data: dict[str, Any], ref: str) -> None:
    """Render into a new Git repository and commit: copier update needs one."""
    render_template(service, data, template, ref)
    commit_new_repository(service, "Render the service")


def package_of(service: Path) -> Path:
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    return service / "src" / str(answers["package_name"])


def assert_merged_cleanly(service: Path) -> None:
    assert not git(service, "diff", "--name-only", "--diff-filter=U"), "unmerged paths"
    rejects = [path.relative_to(service) for path in service.rglob("*.rej")]
    assert rejects == [], f"copier left rejected hunks: {rejects}"
    for path in service.rglob("*"):
        if path.is_file() and ".git" not in path.parts and ".venv" not in path.parts:
            text = path.read_text(errors="replace")
            assert not CONFLICT_MARKER.search(text), f"conflict markers in {path}"


def tree(root: Path) -> Tree:
    """Every file of a service checkout that Git would see, as text, but its lock file."""
    return {
        name: (root / name).read_text(errors="replace")
        for name in sorted(working_tree_files(root))
        if name != "uv.lock"
    }


def test_update_from_a_release_keeps_the_team_edits_and_passes(
    template_repository: Path,
    new_service: Callable[[dict[str, Any]], NewService],
    release_variant: tuple[Release, Variant],
    variants_with_suites: frozenset[Variant],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_property: Any,
) -> None:
    timing = Timing()
    release, variant = release_variant
    service = tmp_path / "service"
    render(template_repository, service, variant.data, release.tag)
    make_team_edits(service)
    edited = time.perf_counter()
    # Its checks run for the covering set from the newest release the template
    # has changed since (everything with --all-variants); the others are
    # compared with a new service below.
    newest = release == latest_changed_release() and variant in covering_variants()
    checked = newest or request.config.getoption("--all-variants")
    steps = timing.steps
    with ExitStack() as cleanup:
        database = None
        if checked and variant.data["database"] != "none":
            database = cleanup.enter_context(scratch_database(variant.data["database"], tmp_path))
            steps.append(("migrate at the release", migrate(service, database)))
            git(service, "add", "-A")  # the team commits the uv.lock its first sync wrote
            commit(service, "Lock the environment")

        updating = time.perf_counter()
        update(service)
        update_seconds = time.perf_counter() - updating

        assert_merged_cleanly(service)
        assert_team_edits_kept(service)
        head = git(template_repository, "rev-parse", "--short", "HEAD").strip()
        recorded = yaml.safe_load((service / ".copier-answers.yml").read_text())["_commit"]
        assert recorded.endswith(head), f"the service records {recorded}, not HEAD ({head})"
        new = new_service(variant.data)
        assert_like_a_new_service(service, new.tree)
        if not checked:
            return
        steps[:0] = [("render and edits", edited - timing.started), ("update", update_seconds)]
        label = f"{release.tag} -> HEAD, {variant.id}"
        try:
            same_as_checked = False
            # Only worth resolving when a new service's suite runs in this session.
            if variant in variants_with_suites:
                locking = time.perf_counter()
                same_as_checked = resolved_lock(service, label) == new.lock
                steps.append(("uv lock", time.perf_counter() - locking))
            if same_as_checked:
                # Its code and environment are a new service's with the same
                # edits, whose own checks run in this session: what only the
                # update has is its migration chain and a database migrated at
                # the release.
                own_steps = [SYNC] if database is None else [SYNC, MIGRATION_TESTS]
                steps += run_steps(service, label, *own_steps)
            else:
                steps += run_service_checks(service, label)
            if database is not None:
                steps.append(("migrate after the update", migrate(service, database, check=True)))
        finally:
            timing.record(record_property)


@dataclass
class NewService:
    """A new service at HEAD with the team's edits."""

    root: Path
    tree: Tree

    @cached_property
    def lock(self) -> str:
        """The uv.lock its first `uv sync` would write."""
        return resolved_lock(self.root, "a new service")


@pytest.fixture(scope="session")
def new_service(
    template_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[dict[str, Any]], NewService]:
    """A new service at HEAD with the team's edits, once per set of answers.

    Every release's update of a variant is compared with the same new service.
    """
    services: dict[str, NewService] = {}

    def new_service_for(data: dict[str, Any]) -> NewService:
        key = repr(sorted(data.items()))
        if key not in services:
            fresh = tmp_path_factory.mktemp("new-service") / "service"
            render(template_repository, fresh, data, "HEAD")
            make_team_edits(fresh)
            services[key] = NewService(fresh, tree(fresh))
        return services[key]

    return new_service_for


def assert_like_a_new_service(service: Path, expected: Tree) -> None:
    """The updated service is exactly a new service with the same edits.

    The team's migration follows whatever its chain's head was when it was
    written, so it may name another revision in a service that began at an
    older release.
    """
    updated = tree(service)
    assert sorted(updated) == sorted(expected)
    differing = {name for name in expected if updated[name] != expected[name]}
    differing -= {".copier-answers.yml"}
    differing -= {
        name for name in differing if name.endswith(f"{MIGRATION_REVISION}_add_orders.py")
    }
    assert not differing, f"differs from a new service: {sorted(differing)}"


@contextmanager
def scratch_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for a service to migrate; removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
        return
    name = f"template_update_{uuid.uuid4().hex[:12]}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1/{name}"
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def psql(statement: str) -> None:
    server = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres")
    subprocess.run(["psql", server, "-q", "-c", statement], check=True, capture_output=True)


def migrate(service: Path, database_url: str, *, check: bool = False) -> float:
    """`migrate` the service's database (then `alembic check`); how long it took."""
    started = time.perf_counter()
    package = yaml.safe_load((service / ".copier-answers.yml").read_text())["package_name"]
    commands = [
        SYNC[1],
        ["uv", "run", "--no-sync", "python", "-m", package, "migrate"],
    ]
    if check:
        commands.append(["uv", "run", "--no-sync", "alembic", "check"])
    environment = {**service_environment(), "DATABASE_URL": database_url}
    for command in commands:
        completed = subprocess.run(
            command, cwd=service, env=environment, capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, (
            f"{' '.join(command)}: {completed.stdout}{completed.stderr}"
        )
    return time.perf_counter() - started


# Answer changes a team makes on a service it has worked on: (name, where it
# starts, what changes). Each ends as a clean merge and a passing service.
ANSWER_CHANGES = [
    (
        "database none -> postgresql",
        {"database": "none", "broker": "none"},
        {"database": "postgresql"},
    ),
    ("database none -> sqlite", {"database": "none", "broker": "none"}, {"database": "sqlite"}),
    *(
        (
            f"broker none -> {broker}",
            {"database": "postgresql", "broker": "none", "example_feature": True, "worker": True},
            {"broker": broker},
        )
        for broker in ("redis", "rabbitmq", "nats")
    ),
    *(
        (
            f"auth none -> {auth}",
            {"database": "postgresql", "auth": "none", "example_feature": True},
            {"auth": auth},
        )
        for auth in ("jwt", "oidc", "api_key")
    ),
    (
        "worker no -> yes",
        {"database": "postgresql", "broker": "redis", "example_feature": False, "worker": False},
        {"worker": True},
    ),
    (
        "example feature no -> yes",
        {"database": "postgresql", "broker": "none", "example_feature": False, "worker": False},
        {"example_feature": True},
    ),
]


def starting_variant(answers: dict[str, Any]) -> Variant:
    return next(
        variant
        for variant in all_variants()
        if all(variant.data.get(name) == value for name, value in answers.items())
    )


@pytest.mark.service_suite
@pytest.mark.parametrize(
    ("start", "change"),
    [case[1:] for case in ANSWER_CHANGES],
    ids=[case[0] for case in ANSWER_CHANGES],
)
def test_changing_an_answer_keeps_the_team_edits_and_passes(
    template_repository: Path,
    tmp_path: Path,
    start: dict[str, Any],
    change: dict[str, Any],
    record_property: Any,
) -> None:
    timing = Timing()
    service = tmp_path / "service"
    render(template_repository, service, starting_variant(start).data, "HEAD")
    edited = make_team_edits(service)

    updating = time.perf_counter()
    update(service, change)
    update_seconds = time.perf_counter() - updating

    assert_merged_cleanly(service)
    assert_team_edits_kept(service, edited)
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert {name: answers[name] for name in change} == change
    timing.steps += [("render and edits", updating - timing.started), ("update", update_seconds)]
    try:
        timing.steps += run_service_checks(service, f"changing {change}")
    finally:
        timing.record(record_property)


def test_an_update_with_a_refused_answer_leaves_the_service_untouched(
    template_repository: Path, tmp_path: Path
) -> None:
    service = tmp_path / "service"
    render(template_repository, service, starting_variant({"database": "none"}).data, "HEAD")
    before = tree(service)

    completed = subprocess.run(
        [
            COPIER,
            "update",
            "--trust",
            "--skip-answered",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            "-d",
            "http_port=80",
        ],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode != 0
    assert "1024" in completed.stdout + completed.stderr, "the message says what is allowed"
    assert tree(service) == before
    assert not git(service, "status", "--porcelain")


PLATFORM_PATCH = (
    '        (b"x-content-type-options", b"nosniff"),\n',
    '        (b"x-content-type-options", b"nosniff"),\n'
    '        (b"x-permitted-cross-domain-policies", b"none"),\n',
)
NEW_QUESTION = """
ticket_prefix:
  type: str
  help: Prefix of the team's ticket references
  default: OPS
"""


@pytest.fixture
def next_version(template_repository: Path, tmp_path: Path) -> Path:
    """A copy of the template repository, to which tests add a newer version."""
    return build_template_repository(tmp_path / "template")


def release_next_version(template: Path) -> None:
    """A fix in a platform file and a new question, committed as the newest version."""
    middleware = template / "template" / "src" / "{{ package_name }}" / "platform" / "middleware.py"
    replace_once(middleware, *PLATFORM_PATCH)
    config = template / "copier.yml"
    text = config.read_text()
    config.write_text(text.replace("# Template settings", f"{NEW_QUESTION}\n# Template settings"))
    git(template, "add", "-A")
    commit(template, "A platform fix and a new question")


@pytest.mark.service_suite
def test_a_platform_fix_reaches_a_service_and_only_new_questions_are_asked(
    next_version: Path, tmp_path: Path
) -> None:
    service = tmp_path / "service"
    render(next_version, service, covering_variants()[0].data, "HEAD")
    make_team_edits(service)
    release_next_version(next_version)

    session = pexpect.spawn(
        COPIER,
        ["update", "--trust", "--skip-answered", "--vcs-ref", "HEAD"],
        cwd=str(service),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    session.expect("Prefix of the team's ticket references")
    asked_before = session.before or ""
    for earlier_question in ("Service name", "HTTP port", "CI provider", "Database"):
        assert earlier_question not in asked_before, f"asked again: {earlier_question}"
    session.sendline("\x15PAY")  # Ctrl-U clears the default offered in the prompt
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0, session.before

    assert_merged_cleanly(service)
    assert_team_edits_kept(service)
    middleware = (package_of(service) / "platform" / "middleware.py").read_text()
    assert "x-permitted-cross-domain-policies" in middleware
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert answers["ticket_prefix"] == "PAY"
    run_service_checks(service, "platform fix")


def test_the_fleet_view_shows_each_services_version_and_whether_it_is_behind(
    next_version: Path, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet"
    oldest = releases()[0]
    git(next_version, "tag", "v90.0.0", "HEAD")
    release_next_version(next_version)
    git(next_version, "tag", "v91.0.0", "HEAD")
    data = next(v for v in all_variants() if offered_at(oldest, v)).data
    render(next_version, fleet / "billing", {**data, "service_name": "billing"}, oldest.tag)
    render(next_version, fleet / "ledger", {**data, "service_name": "ledger"}, "v90.0.0")
    render(next_version, fleet / "payouts", {**data, "service_name": "payouts"}, "v91.0.0")

    completed = subprocess.run(
        [sys.executable, str(FLEET_SCRIPT), str(fleet)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {line.split()[0]: line.split() for line in completed.stdout.splitlines()[2:]}
    assert rows["billing"][1:4] == [oldest.version, "91.0.0", "yes"]
    assert rows["ledger"][1:4] == ["90.0.0", "91.0.0", "yes"]
    assert rows["payouts"][1:4] == ["91.0.0", "91.0.0", "no"]
    assert f"ci={data['ci']}" in " ".join(rows["payouts"])
