"""Run a rendered service's own checks, the way its CI does, in its own environment."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

STEP_TIMEOUT_SECONDS = 900
SYNC = ("uv sync", ["uv", "sync", "--quiet"])
LOCK = ("uv lock", ["uv", "lock", "--quiet"])
PYTEST = ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"]
STEPS = (
    SYNC,
    ("ruff check", ["uv", "run", "--no-sync", "ruff", "check", "--no-cache", "."]),
    ("ruff format", ["uv", "run", "--no-sync", "ruff", "format", "--check", "--no-cache", "."]),
    ("mypy", ["uv", "run", "--no-sync", "mypy"]),
    ("pytest", PYTEST),
)
# The service's own tests of its migration chain: upgrade, downgrade, and a
# database an earlier release migrated.
MIGRATION_TESTS = (
    "migration tests",
    [*PYTEST, "-k", "migrat", "tests/platform/test_database.py"],
)


# Not passed on to a service's steps: the template's own virtualenv, and a ban
# on writing bytecode. A CI runner writes it, so each process a suite starts
# (the server, the relay, workers, migrations) loads its imports compiled
# instead of compiling them all again; that is about 2 s of CPU per process.
NOT_INHERITED = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")


# Where this test worker's services keep their virtualenv (set by a fixture in
# tests/conftest.py); unset, each service has its own `.venv`.
REUSED_ENVIRONMENT = "TEMPLATE_TESTS_SERVICE_ENVIRONMENT"


def service_environment() -> dict[str, str]:
    """This process's environment as a service's own CI would have it (`NOT_INHERITED`).

    Where `REUSED_ENVIRONMENT` names a virtualenv, the services' `uv sync` and
    `uv run` use it: `uv sync` makes it hold exactly what the service locks
    (removing what another service installed), and the libraries two services
    share stay installed and compiled between them.
    """
    environment = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    reused = environment.pop(REUSED_ENVIRONMENT, None)
    if reused:
        environment["UV_PROJECT_ENVIRONMENT"] = reused
    return environment


def run_step(
    project: Path,
    label: str,
    name: str,
    command: list[str],
    *,
    environment: Mapping[str, str] | None = None,
) -> float:
    """Run one step in `project`'s environment; fails if it fails, else returns its seconds.

    `environment` adds variables to the service's environment (`service_environment`).
    """
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=project,
        env={**service_environment(), **(environment or {})},
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{name} failed for {label}:\n{completed.stdout}\n{completed.stderr}"
    )
    return time.perf_counter() - started


def sync_environment(project: Path, label: str) -> Path:
    """Install `project`'s locked dependencies in its virtualenv; returns its interpreter."""
    run_step(project, label, *SYNC)
    environment = service_environment().get("UV_PROJECT_ENVIRONMENT")
    return (Path(environment) if environment else project / ".venv") / "bin" / "python"


def resolved_lock(project: Path, label: str) -> str:
    """`project`'s uv.lock once uv has resolved its pyproject (reusing the pins it has)."""
    run_step(project, label, *LOCK)
    return (project / "uv.lock").read_text()


def run_steps(project: Path, label: str, *steps: tuple[str, list[str]]) -> list[tuple[str, float]]:
    """Run `steps` in `project` in order; fails on the first that fails, else their seconds."""
    return [(name, run_step(project, label, name, command)) for name, command in steps]


def run_service_checks(project: Path, label: str) -> list[tuple[str, float]]:
    """uv sync, ruff, mypy and pytest in `project`; fails on the first that fails.

    Returns how long each step took.
    """
    return run_steps(project, label, *STEPS)
