"""Each variant in its own environment: ruff, mypy --strict and its own tests.

By default the pairwise covering set runs (every pair of answers occurs in at
least one variant); `--all-variants` runs every variant.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from matrix import Variant

STEP_TIMEOUT_SECONDS = 900
STEPS = (
    ("uv sync", ["uv", "sync", "--quiet"]),
    ("ruff check", ["uv", "run", "--no-sync", "ruff", "check", "--no-cache", "."]),
    ("ruff format", ["uv", "run", "--no-sync", "ruff", "format", "--check", "--no-cache", "."]),
    ("mypy", ["uv", "run", "--no-sync", "mypy"]),
    ("pytest", ["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"]),
)


def service_environment() -> dict[str, str]:
    """This process's environment without the template's own virtualenv."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH")
    }


def test_variant_passes_its_own_checks(
    copie: Any, suite_variant: Variant, record_property: Any
) -> None:
    started = time.perf_counter()
    result = copie.copy(extra_answers=suite_variant.data)
    assert result.exception is None, result.exception
    project: Path = result.project_dir
    steps: list[tuple[str, float]] = [("render", time.perf_counter() - started)]
    try:
        for name, command in STEPS:
            step_started = time.perf_counter()
            completed = subprocess.run(
                command,
                cwd=project,
                env=service_environment(),
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT_SECONDS,
                check=False,
            )
            steps.append((name, time.perf_counter() - step_started))
            assert completed.returncode == 0, (
                f"{name} failed for {suite_variant.id}:\n{completed.stdout}\n{completed.stderr}"
            )
    finally:
        record_property("variant_steps", steps)
        record_property("variant_seconds", time.perf_counter() - started)
