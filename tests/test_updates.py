"""`copier update`: from every release to HEAD, with the edits a team makes.

Copier exits 0 even when it leaves conflicts, so every test looks for itself:
no conflict markers, no .rej files, no unmerged paths.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml
from matrix import Variant, all_variants, covering_variants, update
from matrix import render as render_template
from releases import Release, build_template_repository, commit, git, offered_at, releases
from suite import run_service_checks

COPIER = str(Path(sys.executable).parent / "copier")
FLEET_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fleet.py"
CONFLICT_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "release_variant" in metafunc.fixturenames:
        cases = [
            (release, variant)
            for release in releases()
            for variant in all_variants()
            if offered_at(release, variant)
        ]
        metafunc.parametrize("release_variant", cases, ids=[f"{r.tag}-{v.id}" for r, v in cases])


@pytest.fixture(scope="session")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template_repository(tmp_path_factory.mktemp("template") / "repository")


def render(template: Path, service: Path, data: dict[str, Any], ref: str) -> None:
    """Render into a new Git repository and commit: copier update needs one."""
    render_template(service, data, template, ref)
    git(service, "init", "--quiet")
    git(service, "add", "-A")
    commit(service, "Render the service")


def package_of(service: Path) -> Path:
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    return service / "src" / answers["package_name"]


TEAM_MODULE = '''"""Orders: the team's own feature."""

from fastapi import APIRouter

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("/count")
async def count_orders() -> dict[str, int]:
    return {"count": 0}
'''

TEAM_TEST = """import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_the_team_route_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/orders/count")
    assert response.json() == {"count": 0}
"""

TEAM_SETTING = "    orders_page_size: int = 50\n"
TEAM_README = "\n## Orders\n\nHow the orders team runs this service.\n"


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))


def make_team_edits(service: Path) -> None:
    """What a team does in the files it owns: a module, a route, a setting, a test, docs."""
    package = package_of(service)
    (package / "orders.py").write_text(TEAM_MODULE)
    app_lines = (package / "app.py").read_text().splitlines(keepends=True)
    platform_import = next(
        line for line in app_lines if line.startswith("from .platform.wiring import ")
    )
    replace_once(
        package / "app.py",
        platform_import,
        f"from .orders import router as orders_router\n{platform_import}",
    )
    replace_once(
        package / "app.py",
        "    return app\n",
        '    app.include_router(orders_router, prefix="/api/v1")\n    return app\n',
    )
    replace_once(
        package / "settings.py",
        '    """Platform settings plus the service\'s own."""\n',
        f'    """Platform settings plus the service\'s own."""\n\n{TEAM_SETTING}',
    )
    (service / "tests" / "test_orders.py").write_text(TEAM_TEST)
    with (service / "README.md").open("a") as readme:
        readme.write(TEAM_README)
    git(service, "add", "-A")
    commit(service, "The team's own work")


def assert_merged_cleanly(service: Path) -> None:
    assert not git(service, "diff", "--name-only", "--diff-filter=U"), "unmerged paths"
    rejects = [path.relative_to(service) for path in service.rglob("*.rej")]
    assert rejects == [], f"copier left rejected hunks: {rejects}"
    for path in service.rglob("*"):
        if path.is_file() and ".git" not in path.parts and ".venv" not in path.parts:
            text = path.read_text(errors="replace")
            assert not CONFLICT_MARKER.search(text), f"conflict markers in {path}"


def assert_team_edits_kept(service: Path) -> None:
    package = package_of(service)
    assert (package / "orders.py").read_text() == TEAM_MODULE
    app = (package / "app.py").read_text()
    assert "from .orders import router as orders_router" in app
    assert 'app.include_router(orders_router, prefix="/api/v1")' in app
    assert TEAM_SETTING in (package / "settings.py").read_text()
    assert (service / "tests" / "test_orders.py").read_text() == TEAM_TEST
    assert (service / "README.md").read_text().endswith(TEAM_README)


def tree(root: Path) -> dict[str, str]:
    """Every file of a service checkout, as text, without Git's own files."""
    return {
        path.relative_to(root).as_posix(): path.read_text(errors="replace")
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def test_update_from_a_release_keeps_the_team_edits_and_passes(
    template_repository: Path,
    release_variant: tuple[Release, Variant],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_property: Any,
) -> None:
    started = time.perf_counter()
    release, variant = release_variant
    service = tmp_path / "service"
    render(template_repository, service, variant.data, release.tag)
    make_team_edits(service)

    update(service)

    assert_merged_cleanly(service)
    assert_team_edits_kept(service)
    head = git(template_repository, "rev-parse", "--short", "HEAD").strip()
    recorded = yaml.safe_load((service / ".copier-answers.yml").read_text())["_commit"]
    assert recorded.endswith(head), f"the service records {recorded}, not HEAD ({head})"

    # The updated service is exactly a new service with the same edits.
    fresh = tmp_path / "fresh"
    render(template_repository, fresh, variant.data, "HEAD")
    make_team_edits(fresh)
    updated, expected = tree(service), tree(fresh)
    assert sorted(updated) == sorted(expected)
    differing = [name for name in expected if updated[name] != expected[name]]
    assert differing in ([], [".copier-answers.yml"]), f"differs from a new service: {differing}"

    # Being identical, its checks are those of a new service: run them for the
    # covering set, from the newest release (everything with --all-variants).
    newest = release == releases()[-1] and variant in covering_variants()
    if not newest and not request.config.getoption("--all-variants"):
        return
    steps = [("render and update", time.perf_counter() - started)]
    try:
        steps += run_service_checks(service, f"{release.tag} -> HEAD, {variant.id}")
    finally:
        record_property("variant_steps", steps)
        record_property("variant_seconds", time.perf_counter() - started)


def test_changing_an_answer_during_an_update_yields_a_working_service(
    template_repository: Path, tmp_path: Path
) -> None:
    service = tmp_path / "service"
    base = next(v for v in all_variants() if dict(v.answers)["database"] == "none")
    render(template_repository, service, base.data, "HEAD")

    update(service, {"database": "postgresql"})

    assert_merged_cleanly(service)
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert answers["database"] == "postgresql"
    assert (package_of(service) / "platform" / "db.py").is_file()
    run_service_checks(service, "database none -> postgresql")


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
