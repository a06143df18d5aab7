"""Run a rendered service's own checks, the way its CI does, in its own environment."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEP_TIMEOUT_SECONDS = 900
# What a test that runs a service's checks records (pytest's record_property),
# and tests/conftest.py prints at the end of the run.
SECONDS_PROPERTY = "variant_seconds"
CPU_PROPERTY = "variant_cpu_seconds"
STEPS_PROPERTY = "variant_steps"
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


def cpu_seconds() -> float:
    """CPU time this process and the processes it waited for have used so far."""
    used = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        used += usage.ru_utime + usage.ru_stime
    return used


@dataclass
class Timing:
    """A test's wall and CPU time from its creation, and its steps' seconds.

    The CPU time counts the test's process and every process it started and
    waited for (servers a service's tests start, `uv`, mypy), not the database
    and brokers they talk to. A test worker runs one test at a time, so the
    difference is this test's.
    """

    steps: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=cpu_seconds)

    def record(self, record_property: Callable[[str, Any], None]) -> None:
        record_property(STEPS_PROPERTY, self.steps)
        record_property(SECONDS_PROPERTY, time.perf_counter() - self.started)
        record_property(CPU_PROPERTY, cpu_seconds() - self.cpu_started)
