"""Each variant in its own environment: ruff, mypy --strict and its own tests.

The suite runs on a new service with the edits a team makes at every
extension point (tests/team.py): a feature with a route, a model and its
migration, an event and its handler, a setting and a test.

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
from releases import commit_new_repository
from renders import private_copy
from suite import Timing, run_service_checks
from team import make_team_edits


def test_variant_passes_its_own_checks(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    suite_variant: Variant,
    record_property: Any,
) -> None:
    timing = Timing()
    project = private_copy(tmp_path_factory, suite_variant, tmp_path / "service")
    commit_new_repository(project, "Render the service")
    make_team_edits(project)
    timing.steps.append(("render and edits", time.perf_counter() - timing.started))
    try:
        timing.steps += run_service_checks(project, suite_variant.id)
    finally:
        timing.record(record_property)
