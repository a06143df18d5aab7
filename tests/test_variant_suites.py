"""Each variant in its own environment: ruff, mypy --strict and its own tests.

By default the pairwise covering set runs (every pair of answers occurs in at
least one variant); `--all-variants` runs every variant.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from matrix import Variant
from suite import run_service_checks


def test_variant_passes_its_own_checks(
    copie: Any, suite_variant: Variant, record_property: Any
) -> None:
    started = time.perf_counter()
    result = copie.copy(extra_answers=suite_variant.data)
    assert result.exception is None, result.exception
    project: Path = result.project_dir
    steps: list[tuple[str, float]] = [("render", time.perf_counter() - started)]
    try:
        steps += run_service_checks(project, suite_variant.id)
    finally:
        record_property("variant_steps", steps)
        record_property("variant_seconds", time.perf_counter() - started)
