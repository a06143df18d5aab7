"""Each variant in its own environment: ruff, mypy --strict and its own tests.

By default the pairwise covering set runs (every pair of answers occurs in at
least one variant); `--every-code-variant` runs every combination of the
answers that shape the code, and `--all-variants` every variant, deploy
answers included.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from matrix import Variant
from renders import private_copy
from suite import run_service_checks


def test_variant_passes_its_own_checks(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    suite_variant: Variant,
    record_property: Any,
) -> None:
    started = time.perf_counter()
    project = private_copy(tmp_path_factory, suite_variant, tmp_path / "service")
    steps: list[tuple[str, float]] = [("render", time.perf_counter() - started)]
    try:
        steps += run_service_checks(project, suite_variant.id)
    finally:
        record_property("variant_steps", steps)
        record_property("variant_seconds", time.perf_counter() - started)
