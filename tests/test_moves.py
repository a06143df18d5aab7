"""Files a release moves, removes or renames: the team's edits are carried, never lost.

Copier deletes every file the old release rendered and the new one does not.
A release declares each such file in copier.yml `_migrations`
(extensions/moves.py); these tests release a synthetic move and rename and
update a service across it, check that no file of the latest release
disappears undeclared, and read the report a person sees after an update.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import Environment, StrictUndefined
from matrix import (
    COPIER_YML,
    TEMPLATE_ROOT,
    Variant,
    answered_default,
    code_variants,
    covering_variants,
)
from matrix import render as render_template
from packaging.version import Version
from release import Release
from releases import (
    build_template_repository,
    commit,
    git,
    offered_at,
    releases,
    working_tree_files,
)
from suite import run_service_checks, service_environment
from team import replace_once
from test_updates import (
    PLATFORM_PATCH,
    assert_merged_cleanly,
    package_of,
    release_next_version,
    render,
)

COPIER = str(Path(sys.executable).parent / "copier")
MOVES_SCRIPT = "extensions/moves.py"
PLATFORM = Path("template") / "src" / "{{ package_name }}" / "platform"

# The synthetic release: telemetry.py becomes tracing.py (and changes a line
# of its own), and READINESS_TIMEOUT_SECONDS becomes READINESS_CHECK_TIMEOUT_SECONDS.
OLD_MODULE, NEW_MODULE = "telemetry", "tracing"
OLD_SETTING, NEW_SETTING = "readiness_timeout_seconds", "readiness_check_timeout_seconds"
TEMPLATE_DOCSTRING = (
    '    """\'key=value,key2=value2\', the OTEL_EXPORTER_OTLP_HEADERS format."""\n',
    '    """\'key=value,key2=value2\', the OTEL_EXPORTER_OTLP_HEADERS format; blanks skipped."""\n',
)
# The entry a release adds to copier.yml `_migrations` for the move.
MOVE_ENTRY = """\
  - version: "VERSION"
    command:
      - "{{ _copier_python }}"
      - "{{ _copier_conf.src_path }}/extensions/moves.py"
      - src/{{ package_name }}/platform/OLD.py
      - src/{{ package_name }}/platform/NEW.py
"""

# The team's edit inside the module the release moves.
TEAM_EDIT = (
    'UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/metrics"})\n',
    'UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/metrics", "/internal/ping"})\n',
)
# An edit of the very line the release changes: a conflict.
CONFLICTING_EDIT = (
    TEMPLATE_DOCSTRING[0],
    '    """\'key=value,key2=value2\', as OTEL_EXPORTER_OTLP_HEADERS holds them."""\n',
)


def next_version_number(template: Path) -> str:
    """A version above every tag of the template repository."""
    tagged = [Version(tag.lstrip("v")) for tag in git(template, "tag", "--list", "v*").split()]
    return f"{max(tagged).major + 1}.0.0"


def release_a_move_and_a_rename(template: Path) -> str:
    """Move a platform module, rename a platform setting, declare the move; tag it."""
    version = next_version_number(template)
    git(
        template,
        "mv",
        str(PLATFORM / f"{OLD_MODULE}.py"),
        str(PLATFORM / f"{NEW_MODULE}.py"),
    )
    replace_once(template / PLATFORM / f"{NEW_MODULE}.py", *TEMPLATE_DOCSTRING)
    import_old_module = re.compile(rf"^(from \.+(?:platform\.)?){OLD_MODULE} import", re.MULTILINE)
    importers = [
        path
        for path in (template / "template" / "src").rglob("*")
        if path.is_file() and import_old_module.search(path.read_text())
    ]
    assert importers, f"nothing imports the {OLD_MODULE} module any more"
    for path in importers:
        path.write_text(import_old_module.sub(rf"\g<1>{NEW_MODULE} import", path.read_text()))
    replace_once(
        template / PLATFORM / "application.py",
        f"settings.{OLD_SETTING}",
        f"settings.{NEW_SETTING}",
    )
    replace_once(
        template / PLATFORM / "settings.py.jinja",
        f"    {OLD_SETTING}: float = Field(default=2.0, gt=0)\n",
        f"    {NEW_SETTING}: float = renamed_setting(\n"
        f'        "{NEW_SETTING}", was="{OLD_SETTING}", default=2.0, gt=0\n'
        "    )\n",
    )
    replace_once(
        template / "template" / ".env.example.jinja",
        f"{OLD_SETTING.upper()}=",
        f"{NEW_SETTING.upper()}=",
    )
    replace_once(
        template / "copier.yml",
        "_migrations:\n",
        "_migrations:\n"
        + MOVE_ENTRY.replace("VERSION", version)
        .replace("OLD", OLD_MODULE)
        .replace("NEW", NEW_MODULE),
    )
    git(template, "add", "-A")
    commit(template, f"Move platform/{OLD_MODULE}.py to {NEW_MODULE}.py, rename a setting")
    git(template, "tag", f"v{version}")
    return version


def variant_with_a_database_and_a_broker(release: Release) -> Variant:
    """The richest covering variant the release offered: a database, and a broker if it can."""
    offered = [v for v in covering_variants() if offered_at(release, v)]
    with_database = [v for v in offered if v.data["database"] != "none"]
    with_broker = [v for v in with_database if v.data["broker"] != "none"]
    return (with_broker or with_database or offered)[0]


def copier_update(service: Path) -> subprocess.CompletedProcess[str]:
    """`copier update` as a person runs it, non-interactively."""
    return subprocess.run(
        [COPIER, "update", "--trust", "--skip-answered", "--defaults", "--vcs-ref", "HEAD"],
        cwd=service,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def service_at_latest_release(template: Path, service: Path, edit: tuple[str, str]) -> Path:
    """A service at the latest release, with the team's edit committed in the module to move."""
    latest = releases()[-1]
    render(template, service, variant_with_a_database_and_a_broker(latest).data, latest.tag)
    replace_once(package_of(service) / "platform" / f"{OLD_MODULE}.py", *edit)
    git(service, "add", "-A")
    commit(service, "The team's edit of the telemetry module")
    return service


@pytest.fixture
def moving_template(tmp_path: Path) -> Path:
    return build_template_repository(tmp_path / "template")


@pytest.mark.service_suite
def test_a_moved_module_carries_the_team_edit_and_a_renamed_setting_keeps_working(
    moving_template: Path, tmp_path: Path
) -> None:
    service = service_at_latest_release(moving_template, tmp_path / "service", TEAM_EDIT)
    release_a_move_and_a_rename(moving_template)

    completed = copier_update(service)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert_merged_cleanly(service)
    platform = package_of(service) / "platform"
    assert not (platform / f"{OLD_MODULE}.py").exists()
    moved = (platform / f"{NEW_MODULE}.py").read_text()
    assert TEAM_EDIT[1] in moved, "the team's edit did not reach the new path"
    assert TEMPLATE_DOCSTRING[1] in moved, "the release's own change to the module is missing"
    assert f"platform/{OLD_MODULE}.py -> src/" in output
    # The report lists what changed and finds nothing to resolve.
    assert f"?? src/{package_of(service).name}/platform/{NEW_MODULE}.py" in output
    assert "No conflicts" in output
    assert "CONFLICTS" not in output

    run_service_checks(service, "a moved module and a renamed setting")
    read = subprocess.run(
        [
            "uv",
            "run",
            "--no-sync",
            "python",
            "-c",
            f"from {package_of(service).name}.settings import Settings;"
            f"print(Settings(_env_file=None).{NEW_SETTING})",
        ],
        cwd=service,
        env={**service_environment(), OLD_SETTING.upper(): "7"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "7.0", "the old environment variable is not read"
    assert "FutureWarning" in read.stderr
    assert OLD_SETTING.upper() in read.stderr
    assert NEW_SETTING.upper() in read.stderr


def test_a_conflicting_edit_of_a_moved_module_is_reported_not_lost(
    moving_template: Path, tmp_path: Path
) -> None:
    service = service_at_latest_release(moving_template, tmp_path / "service", CONFLICTING_EDIT)
    release_a_move_and_a_rename(moving_template)

    completed = copier_update(service)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    moved_path = f"src/{package_of(service).name}/platform/{NEW_MODULE}.py"
    moved = (service / moved_path).read_text()
    assert CONFLICTING_EDIT[1] in moved
    assert TEMPLATE_DOCSTRING[1] in moved
    assert re.search(r"^<<<<<<< before updating", moved, re.MULTILINE)
    assert "CONFLICTS" in output
    report = output[output.index("CONFLICTS") :]
    assert f"  {moved_path}" in report


def test_an_edited_file_the_release_removes_is_kept(moving_template: Path, tmp_path: Path) -> None:
    service = service_at_latest_release(moving_template, tmp_path / "service", TEAM_EDIT)
    release_a_move_and_a_rename(moving_template)
    # Make it a removal: the module is gone, not moved.
    config = moving_template / "copier.yml"
    replace_once(config, f"      - src/{{{{ package_name }}}}/platform/{NEW_MODULE}.py\n", "")
    git(moving_template, "add", "-A")
    commit(moving_template, "Declare the module removed")
    git(moving_template, "tag", f"v{next_version_number(moving_template)}")

    completed = copier_update(service)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    kept = package_of(service) / "platform" / f"{OLD_MODULE}.py"
    assert kept.is_file()
    assert TEAM_EDIT[1] in kept.read_text()
    assert f"KEPT src/{package_of(service).name}/platform/{OLD_MODULE}.py" in output


def test_the_report_names_a_file_copier_could_not_merge(
    moving_template: Path, tmp_path: Path
) -> None:
    service = tmp_path / "service"
    render(moving_template, service, covering_variants()[0].data, "HEAD")
    middleware = package_of(service) / "platform" / "middleware.py"
    # The team changes the very line the next version adds a header after.
    replace_once(middleware, PLATFORM_PATCH[0], PLATFORM_PATCH[0].replace("nosniff", "NOSNIFF"))
    git(service, "add", "-A")
    commit(service, "The team's edit of the security headers")
    release_next_version(moving_template)

    completed = copier_update(service)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "<<<<<<< before updating" in middleware.read_text()
    assert "CONFLICTS" in output
    report = output[output.index("CONFLICTS") :]
    assert f"  src/{package_of(service).name}/platform/middleware.py" in report


# A file never disappears unnoticed.


@cache
def template_files_at(commit: str | None) -> tuple[str, ...]:
    """The template's files (under its subdirectory) at a commit; the working tree for None."""
    if commit is None:
        listed = working_tree_files(TEMPLATE_ROOT)
    else:
        listed = git(
            TEMPLATE_ROOT, "ls-tree", "-r", "--name-only", commit, "--", "template"
        ).splitlines()
    return tuple(name.removeprefix("template/") for name in listed if name.startswith("template/"))


def rendered_paths(files: Iterable[str], answers: Mapping[str, Any]) -> set[str]:
    """The paths Copier renders from template files, as its path rendering does.

    A `.jinja` suffix is dropped before rendering; a part that renders empty
    drops the file; a plain file with a `.jinja` sibling is not rendered.
    """
    env = Environment(undefined=StrictUndefined, autoescape=False)
    context = {**answers, "_copier_conf": {"answers_file": ".copier-answers.yml"}}
    files = set(files)
    paths = set()
    for name in files:
        if f"{name}.jinja" in files:
            continue
        parts = [
            env.from_string(part).render(context) for part in name.removesuffix(".jinja").split("/")
        ]
        if all(parts):
            paths.add("/".join(parts))
    return paths


def answers_of(variant: Variant) -> dict[str, Any]:
    data = variant.data
    return {**data, "package_name": answered_default("package_name", data)}


def declared_paths(release: Release, answers: Mapping[str, Any]) -> set[str]:
    """The old paths that copier.yml declares moved or removed after the release."""
    env = Environment(undefined=StrictUndefined, autoescape=False)
    declared: set[str] = set()
    for entry in yaml.safe_load(COPIER_YML.read_text()).get("_migrations", []):
        command = entry.get("command", []) if isinstance(entry, dict) else []
        scripts = [i for i, part in enumerate(command) if str(part).endswith(MOVES_SCRIPT)]
        if not scripts or Version(str(entry.get("version", "0"))) <= Version(release.version):
            continue
        sources = command[scripts[0] + 1 :: 2]
        declared.update(env.from_string(source).render(answers) for source in sources)
    return declared


def test_rendering_paths_matches_a_real_render(tmp_path: Path) -> None:
    variant = covering_variants()[1]
    service = render_template(tmp_path / "service", variant.data)
    rendered = {
        path.relative_to(service).as_posix() for path in service.rglob("*") if path.is_file()
    }
    assert rendered_paths(template_files_at(None), answers_of(variant)) == rendered


def test_no_file_of_the_latest_release_disappears_undeclared() -> None:
    latest = releases()[-1]
    undeclared: dict[str, list[str]] = {}
    for variant in code_variants():
        if not offered_at(latest, variant):
            continue
        answers = answers_of(variant)
        gone = rendered_paths(template_files_at(latest.commit), answers) - rendered_paths(
            template_files_at(None), answers
        )
        for path in sorted(gone - declared_paths(latest, answers)):
            undeclared.setdefault(path, []).append(variant.id)
    listed = "\n".join(
        f"  {path}  ({len(ids)} variant(s), e.g. {ids[0]})" for path, ids in undeclared.items()
    )
    assert not undeclared, (
        f"files {latest.tag} rendered are gone at HEAD with no `_migrations` entry "
        f"({MOVES_SCRIPT}) declaring their move or removal:\n{listed}"
    )


def load_moves_script() -> Any:
    spec = importlib.util.spec_from_file_location("moves", TEMPLATE_ROOT / MOVES_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_removed_file_this_service_still_renders_is_left_to_copier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A removal may be only for some answers; where the file stays, Copier merged it."""
    moves = load_moves_script()
    monkeypatch.chdir(tmp_path)
    merged = tmp_path / "deploy" / "monitoring" / "podmonitor.yaml"
    merged.parent.mkdir(parents=True)
    merged.write_text("as Copier merged it\n")
    team_copy = tmp_path / "team"
    team_copy.write_text("as the team left it\n")

    assert moves.keep_removed_file("deploy/monitoring/podmonitor.yaml", team_copy) is False
    assert merged.read_text() == "as Copier merged it\n"
    assert "KEPT" not in capsys.readouterr().out

    merged.unlink()
    moves.keep_removed_file("deploy/monitoring/podmonitor.yaml", team_copy)
    assert merged.read_text() == "as the team left it\n"
    assert "KEPT deploy/monitoring/podmonitor.yaml" in capsys.readouterr().out
