"""Shared fixtures and the variant parametrisation of the template's tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jinja_cache
import pytest
from matrix import Variant, all_variants, code_variants, covering_variants
from suite import CPU_PROPERTY, REUSED_ENVIRONMENT, SECONDS_PROPERTY, STEPS_PROPERTY


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
    parser.addoption(
        "--every-code-variant",
        action="store_true",
        default=False,
        help=(
            "run the full suite of every combination of code-shaping answers, not only "
            "of the pairwise covering set"
        ),
    )


def suite_variants(config: pytest.Config) -> tuple[str, tuple[Variant, ...]]:
    """The set of variants whose full suite runs: its name, and the variants."""
    if config.getoption("--all-variants"):
        return "every variant", all_variants()
    if config.getoption("--every-code-variant"):
        return "every combination of code-shaping answers", code_variants()
    return "pairwise covering set", covering_variants()


_SUITES_RUN = pytest.StashKey[frozenset[Variant]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_SUITES_RUN] = frozenset(
        variant for item in session.items if isinstance(variant := _suite_variant_of(item), Variant)
    )


@pytest.fixture(scope="session")
def variants_with_suites(request: pytest.FixtureRequest) -> frozenset[Variant]:
    """The variants whose full suite this run runs (on a new service with the team's edits)."""
    return request.config.stash.get(_SUITES_RUN, frozenset())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    every = metafunc.config.getoption("--all-variants")
    if "variant" in metafunc.fixturenames:
        variants = all_variants() if every else code_variants()
        metafunc.parametrize("variant", variants, ids=[v.id for v in variants])
    if "suite_variant" in metafunc.fixturenames:
        _, variants = suite_variants(metafunc.config)
        metafunc.parametrize("suite_variant", variants, ids=[v.id for v in variants])


# What makes a variant's suite long, by answer: each adds real processes or waits.
SUITE_WEIGHTS = {"database": 2, "broker": 4, "worker": 2, "example_feature": 2, "auth": 1}


def suite_weight(variant: Variant) -> int:
    data = variant.data
    return sum(
        weight
        for question, weight in SUITE_WEIGHTS.items()
        if data[question] not in (None, False, "none")
    )


def _parameter(item: pytest.Item, name: str) -> object:
    """The value `item` is parametrised with under `name`, if it is."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(name) if callspec else None


def _suite_variant_of(item: pytest.Item) -> object:
    """The variant whose full suite `item` runs, if it runs one."""
    return _parameter(item, "suite_variant")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop what a suite in this run covers; then whole suites first, the longest first.

    A test marked `covered_by_suite` checks, for one `variant`, a step of that
    variant's own suite (mypy --strict), so it is deselected where a suite of
    the same code (the deploy answers aside) runs. Then the order: the
    variants' suites, by weight, so no worker ends on a long one, then the
    other tests marked `service_suite`, then the rest.
    """
    code_with_suites = {
        variant.code for item in items if isinstance(variant := _suite_variant_of(item), Variant)
    }
    kept: list[pytest.Item] = []
    covered: list[pytest.Item] = []
    for item in items:
        variant = _parameter(item, "variant")
        is_covered = (
            item.get_closest_marker("covered_by_suite") is not None
            and isinstance(variant, Variant)
            and variant.code in code_with_suites
        )
        (covered if is_covered else kept).append(item)
    if covered:
        config.hook.pytest_deselected(items=covered)
        items[:] = kept

    def order(item: pytest.Item) -> tuple[int, int]:
        variant = _suite_variant_of(item)
        if isinstance(variant, Variant):
            return (0, -suite_weight(variant))
        if item.get_closest_marker("service_suite"):
            return (1, 0)
        return (2, 0)

    items.sort(key=order)


@pytest.fixture(scope="session", autouse=True)
def shared_type_check_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One mypy cache for every service this test worker checks.

    mypy's cache is per module and checked against each file's content hash,
    so the libraries every variant shares (FastAPI, SQLAlchemy, pydantic...)
    are analysed once per worker instead of once per variant, and each
    variant's own modules are still checked in full.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MYPY_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mypy-cache"))
        yield


@pytest.fixture(scope="session", autouse=True)
def reused_service_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One virtualenv for every service this test worker installs, one at a time.

    Each service's `uv sync` makes it exactly that service's locked set, so
    each suite still runs against its own dependencies; what stays between
    services is what they share, installed and with its bytecode compiled.
    Compiling a service's imports afresh takes about 4 s of CPU per suite.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(REUSED_ENVIRONMENT, str(tmp_path_factory.getbasetemp() / "service-venv"))
        yield


@pytest.fixture(scope="session", autouse=True)
def templates_compiled_once() -> Iterator[None]:
    """Copier's renders in this test process compile each template source once (jinja_cache)."""
    with jinja_cache.CompiledTemplates().in_use():
        yield


_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.perf_counter()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print each variant's time (and where it went) and the total."""
    rows = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            properties = dict(getattr(report, "user_properties", []))
            if report.when == "call" and SECONDS_PROPERTY in properties:
                rows.append((report.nodeid, outcome, properties))
    if not rows:
        return
    which, _ = suite_variants(config)
    terminalreporter.section(f"variant suites ({which})")
    for nodeid, outcome, properties in sorted(rows):
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in properties[STEPS_PROPERTY])
        variant = nodeid.split("[", 1)[-1].rstrip("]")
        terminalreporter.write_line(
            f"{properties[SECONDS_PROPERTY]:7.1f}s  {properties[CPU_PROPERTY]:6.1f}s CPU  "
            f"{outcome:6}  {variant}  ({steps})"
        )
    summed = sum(properties[SECONDS_PROPERTY] for _, _, properties in rows)
    cpu = sum(properties[CPU_PROPERTY] for _, _, properties in rows)
    wall = time.perf_counter() - config.stash.get(_STARTED, time.perf_counter())
    terminalreporter.write_line(
        f"{len(rows)} variant suites: {summed:.1f}s summed over workers ({cpu:.1f}s of CPU), "
        f"{wall:.1f}s wall time"
    )
