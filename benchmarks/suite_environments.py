"""How a variant's own suite is run: each in its own fresh environment, or one reused.

The template's tests run each variant's suite the way its own CI would
(tests/suite.py). This compares, side by side on the same renders (each with
a team's edits, tests/team.py), two ways of giving the suites their
environment:

- fresh: `uv sync` into the service's own `.venv`, with bytecode writing
  banned (`PYTHONDONTWRITEBYTECODE=1`, as on this machine's shell), so every
  Python process the suite starts compiles all it imports;
- reused: `uv sync` into one virtualenv that every service in turn makes its
  own (as a test worker does, `TEMPLATE_TESTS_SERVICE_ENVIRONMENT`), with
  bytecode written, so what services share is installed and compiled once.

For each variant, in turn, both ways run (their order alternating between
rounds), timing `uv sync` and the service's pytest, wall and CPU.

    uv run python -m benchmarks suites [--rounds N] [--no-save] [VARIANT ...]

A VARIANT is `key=value,key=value` over the default answers; by default the
pairwise covering set's first six variants, as tests/matrix.py orders them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matrix import BASE_ANSWERS, covering_variants, render, shaping_questions
from releases import commit_new_repository
from suite import PYTEST, SYNC, run_step
from team import make_team_edits

from benchmarks.common import machine, now, print_table, save_results

DEFAULT_VARIANTS = 6


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_step(
    project: Path, step: tuple[str, list[str]], extra: dict[str, str]
) -> dict[str, float]:
    """Run one step; its wall and CPU seconds (its own and its children's)."""
    cpu = children_cpu_seconds()
    wall = run_step(project, str(project), *step, environment=extra)
    return {"wall_s": wall, "cpu_s": children_cpu_seconds() - cpu}


def run_suite(render_root: Path, work: Path, extra: dict[str, str]) -> dict[str, Any]:
    project = work / "service"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(render_root, project, symlinks=True)
    return {
        "sync": timed_step(project, SYNC, extra),
        "pytest": timed_step(project, ("pytest", PYTEST), extra),
    }


def parse_variant(text: str) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for pair in filter(None, text.split(",")):
        key, value = pair.split("=", 1)
        answers[key] = {"yes": True, "no": False}.get(value, value)
    return answers


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="key=value,... (default: covering set)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    variants = [parse_variant(text) for text in args.variants] or [
        {question: variant.data[question] for question in shaping_questions()}
        for variant in covering_variants()[:DEFAULT_VARIANTS]
    ]
    with tempfile.TemporaryDirectory(prefix="bench-suites-") as scratch:
        root = Path(scratch)
        reused = root / "reused-venv"
        # What each way adds to the service's environment (`service_environment`).
        ways = {
            "fresh": {"PYTHONDONTWRITEBYTECODE": "1"},
            "reused": {"UV_PROJECT_ENVIRONMENT": str(reused)},
        }
        renders = []
        for index, answers in enumerate(variants):
            project = render(root / f"render-{index}", {**BASE_ANSWERS, **answers})
            commit_new_repository(project, "Render the service")
            make_team_edits(project)
            renders.append(project)
        runs: list[dict[str, Any]] = []
        for round_number in range(args.rounds):
            order = list(ways) if round_number % 2 == 0 else list(reversed(ways))
            for answers, project in zip(variants, renders, strict=True):
                label = ",".join(f"{key}={value}" for key, value in answers.items())
                for way in order:
                    work = root / f"{way}-work"
                    work.mkdir(exist_ok=True)
                    timings = run_suite(project, work, ways[way])
                    runs.append({"round": round_number, "variant": label, "way": way, **timings})
                    print(
                        f"{way:6}  sync {timings['sync']['wall_s']:5.1f}s  pytest "
                        f"{timings['pytest']['wall_s']:5.1f}s wall "
                        f"{timings['pytest']['cpu_s']:5.1f}s CPU  {label}",
                        flush=True,
                    )
    totals = {
        way: {
            f"{step}_{measure}": sum(run[step][measure] for run in runs if run["way"] == way)
            for step in ("sync", "pytest")
            for measure in ("wall_s", "cpu_s")
        }
        for way in ways
    }
    # Sync and pytest, the suite's own wall time, summed over its runs.
    suite_wall = {
        way: total["sync_wall_s"] + total["pytest_wall_s"] for way, total in totals.items()
    }
    rows = [
        [
            way,
            f"{total['sync_wall_s']:.1f}s",
            f"{total['pytest_wall_s']:.1f}s",
            f"{total['pytest_cpu_s']:.1f}s",
            f"{suite_wall[way] / len(renders) / args.rounds:.1f}s",
        ]
        for way, total in totals.items()
    ]
    print()
    print_table(["way", "sync (wall)", "pytest (wall)", "pytest (CPU)", "per suite"], rows)
    ratio = suite_wall["reused"] / suite_wall["fresh"]
    print(f"\nreused / fresh, sync + pytest wall time: {ratio:.2f}")
    if not args.no_save:
        results = {"when": now(), "machine": machine(), "runs": runs, "totals": totals}
        print(save_results("suite_environments", results))
