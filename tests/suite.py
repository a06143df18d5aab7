"""Run a rendered service's own checks, the way its CI does, in its own environment."""

from __future__ import annotations

import os
import subprocess
import time
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


def service_environment() -> dict[str, str]:
    """This process's environment without the template's own virtualenv."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH")
    }


def run_step(project: Path, label: str, name: str, command: list[str], **environment: str) -> float:
    """Run one step in `project`'s environment; fails if it fails, else returns its seconds.

    `environment` adds variables to the service's environment (`service_environment`).
    """
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=project,
        env={**service_environment(), **environment},
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
    """Install `project`'s locked dependencies in its own virtualenv; returns its interpreter."""
    run_step(project, label, *SYNC)
    return project / ".venv" / "bin" / "python"


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
