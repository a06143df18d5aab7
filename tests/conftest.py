"""Shared fixtures and the variant parametrisation of the template's tests."""

from __future__ import annotations

import time
from typing import Any

import pytest
from matrix import all_variants, code_variants, covering_variants

SUITE_SECONDS = "variant_seconds"
SUITE_STEPS = "variant_steps"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-variants",
        action="store_true",
        default=False,
        help=(
            "render and run the full suite of every variant, not only one variant per "
            "combination of code-shaping answers and the pairwise covering set"
        ),
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    every = metafunc.config.getoption("--all-variants")
    if "variant" in metafunc.fixturenames:
        variants = all_variants() if every else code_variants()
        metafunc.parametrize("variant", variants, ids=[v.id for v in variants])
    if "suite_variant" in metafunc.fixturenames:
        variants = all_variants() if every else covering_variants()
        metafunc.parametrize("suite_variant", variants, ids=[v.id for v in variants])


_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.perf_counter()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print each variant's time (and where it went) and the total."""
    rows = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            properties = dict(getattr(report, "user_properties", []))
            if report.when == "call" and SUITE_SECONDS in properties:
                rows.append((report.nodeid, outcome, properties))
    if not rows:
        return
    every = config.getoption("--all-variants")
    terminalreporter.section(
        f"variant suites ({'every variant' if every else 'pairwise covering set'})"
    )
    for nodeid, outcome, properties in sorted(rows):
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in properties[SUITE_STEPS])
        variant = nodeid.split("[", 1)[-1].rstrip("]")
        terminalreporter.write_line(
            f"{properties[SUITE_SECONDS]:7.1f}s  {outcome:6}  {variant}  ({steps})"
        )
    summed = sum(properties[SUITE_SECONDS] for _, _, properties in rows)
    wall = time.perf_counter() - config.stash.get(_STARTED, time.perf_counter())
    terminalreporter.write_line(
        f"{len(rows)} variant suites: {summed:.1f}s summed over workers, {wall:.1f}s wall time"
    )
