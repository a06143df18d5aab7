"""The template's own costs: one render, one update, and the variant matrix.

- render: `copier copy` of the default variant, in process (the template's
  work) and as the `copier` command (plus Python start-up and Copier's import);
- update: `copier update` of a default service rendered at each release in
  releases.toml to this working tree, in the scratch clone the update tests
  build (tests/releases.py);
- both in process as Copier runs them and as the template's tests do, with
  each template source compiled once per process (tests/jinja_cache.py), in
  turn;
- matrix: the template's own variant suites (`pytest tests/test_variant_suites.py`:
  the pairwise covering set, as CI runs them; every combination of the
  code-shaping answers with --every-code-variant; every variant with
  --all-variants), parsed
  from the per-variant timing summary the suite prints, or from a saved
  pytest output with --from-log.

    uv run --group bench python -m benchmarks template \
        [--every-code-variant | --all-variants] [--skip-matrix | --from-log FILE]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jinja_cache import CompiledTemplates
from matrix import BASE_ANSWERS, render, update
from matrix import all_variants as every_variant
from releases import build_template_repository, commit, git, releases

from benchmarks.common import (
    RESULTS,
    ROOT,
    load_results,
    machine,
    median,
    now,
    print_table,
    save_results,
)
from benchmarks.report import (
    MATRIX_STEPS_HEADER,
    TEMPLATE_HEADER,
    matrix_step_rows,
    template_rows,
)

COPIER = Path(sys.executable).parent / "copier"
MATRIX_TIMEOUT_SECONDS = 60 * 60
# The option that picks each set of variant suites, and its name.
MATRIX_SETS = {
    "covering": ((), "pairwise covering set"),
    "code": (("--every-code-variant",), "every combination of code-shaping answers"),
    "every": (("--all-variants",), "every variant"),
}
# "   63.2s    40.1s CPU  passed  database=none-...  (render 1.2s, uv sync 3.4s, ...)"
VARIANT_LINE = re.compile(
    r"^\s*(?P<seconds>[\d.]+)s\s+(?P<cpu>[\d.]+)s CPU\s+(?P<outcome>passed|failed)"
    r"\s+(?P<variant>\S+)\s+\((?P<steps>.*)\)\s*$"
)
STEP = re.compile(r"(.+?) ([\d.]+)s$")
# "19 variant suites: 594.0s summed over workers (356.1s of CPU), 1604.2s wall time"
TOTAL_LINE = re.compile(
    r"(?P<count>\d+) variant suites: (?P<summed>[\d.]+)s summed over workers "
    r"\((?P<cpu>[\d.]+)s of CPU\), (?P<wall>[\d.]+)s wall"
)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def render_with_copier_command(destination: Path) -> None:
    command = [str(COPIER), "copy", "-q", "--trust", "--defaults"]
    for name, value in BASE_ANSWERS.items():
        command += ["-d", f"{name}={value}"]
    subprocess.run(
        [*command, str(ROOT), str(destination)], capture_output=True, check=True, timeout=300
    )


def render_times(work: Path, rounds: int, compiled: CompiledTemplates) -> dict[str, float]:
    """Median seconds for one render of the default variant, in process and as a command.

    In process both as Copier runs and as the template's tests run, with each
    template source compiled once (`compiled`, already holding the default
    variant's), in turn.
    """
    in_process, compiled_once, as_command = [], [], []
    for n in range(rounds):
        in_process.append(timed(partial(render, work / f"render-{n}", BASE_ANSWERS)))
        with compiled.in_use():
            compiled_once.append(timed(partial(render, work / f"once-{n}", BASE_ANSWERS)))
        as_command.append(timed(partial(render_with_copier_command, work / f"command-{n}")))
    return {
        "in_process_s": median(in_process),
        "in_process_compiled_once_s": median(compiled_once),
        "command_s": median(as_command),
    }


def rendered_at(template: Path, service: Path, ref: str) -> Path:
    """The default variant rendered at `ref` and committed, ready for `copier update`."""
    render(service, BASE_ANSWERS, template, ref)
    git(service, "init", "--quiet")
    git(service, "add", "-A")
    commit(service, "Render the service")
    return service


def update_times(work: Path, compiled: CompiledTemplates) -> list[dict[str, Any]]:
    """Seconds to update a default service from each release to this working tree.

    As Copier runs, and with each template source compiled once as the tests
    run, in turn, each on a service of its own.
    """
    template = build_template_repository(work / "template")
    found = []
    for release in releases():
        service = rendered_at(template, work / f"service-{release.tag}", release.tag)
        seconds = timed(partial(update, service))
        service = rendered_at(template, work / f"once-{release.tag}", release.tag)
        with compiled.in_use():
            compiled_seconds = timed(partial(update, service))
        found.append({"from": release.tag, "seconds": seconds, "compiled_once_s": compiled_seconds})
    return found


def parse_matrix(output: str) -> dict[str, Any]:
    """The variant suites' timing summary: each variant, each step, and the totals."""
    variants: list[dict[str, Any]] = []
    for line in output.splitlines():
        match = VARIANT_LINE.match(line)
        if match:
            steps: dict[str, float] = {}
            for part in match["steps"].split(", "):
                step = STEP.match(part)
                if step:
                    steps[step.group(1)] = float(step.group(2))
            variants.append(
                {
                    "variant": match["variant"],
                    "outcome": match["outcome"],
                    "seconds": float(match["seconds"]),
                    "cpu_s": float(match["cpu"]),
                    "steps": steps,
                }
            )
    total = TOTAL_LINE.search(output)
    step_totals: dict[str, float] = defaultdict(float)
    for variant in variants:
        for name, seconds in variant["steps"].items():
            step_totals[name] += seconds
    return {
        "variants": variants,
        "count": int(total["count"]) if total else len(variants),
        "summed_s": float(total["summed"]) if total else None,
        "cpu_s": float(total["cpu"]) if total else None,
        "wall_s": float(total["wall"]) if total else None,
        "step_totals_s": dict(step_totals),
    }


def matrix_times(which: str, log: Path | None) -> dict[str, Any]:
    options, name = MATRIX_SETS[which]
    if log is not None:
        parsed = parse_matrix(log.read_text())
        parsed["set"] = f"{name}, from {log.name}"
        return parsed
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["tests/test_variant_suites.py", *options]
    print(f"running {' '.join(command[1:])} (up to {MATRIX_TIMEOUT_SECONDS // 60} min) ...")
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MATRIX_TIMEOUT_SECONDS,
        check=False,
    )
    parsed = parse_matrix(completed.stdout)
    parsed["command_wall_s"] = time.perf_counter() - started
    parsed["set"] = name
    parsed["every_variant_count"] = len(every_variant())
    if parsed["wall_s"] and parsed["count"] and which != "every":
        # The same wall time per variant, for every variant: what --all-variants would take.
        per_variant = parsed["wall_s"] / parsed["count"]
        parsed["every_variant_estimate_s"] = per_variant * parsed["every_variant_count"]
    parsed["exit_code"] = completed.returncode
    return parsed


def print_results(results: dict[str, Any]) -> None:
    print_table(TEMPLATE_HEADER, template_rows(results))
    matrix = results.get("matrix")
    if matrix:
        print("\nwhere the matrix's time goes (summed over variants):")
        print_table(MATRIX_STEPS_HEADER, matrix_step_rows(matrix))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="renders to take the median of")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--every-code-variant",
        action="store_const",
        dest="matrix",
        const="code",
        help="the suite of every combination of code-shaping answers",
    )
    chosen.add_argument(
        "--all-variants",
        action="store_const",
        dest="matrix",
        const="every",
        help="every variant's suite, deploy answers included",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--skip-matrix",
        action="store_true",
        help="renders and updates only; the matrix figures saved last time are kept",
    )
    source.add_argument(
        "--from-log",
        type=Path,
        help="read the matrix from a saved pytest output (such as a CI log) instead",
    )
    parser.add_argument("--no-save", action="store_true", help="print only; keep the results")
    args = parser.parse_args(argv)
    compiled = CompiledTemplates()
    with tempfile.TemporaryDirectory(prefix="bench-template-") as work:
        with compiled.in_use():  # as in a test process, which has rendered before
            render(Path(work) / "warm-up", BASE_ANSWERS)
        results: dict[str, Any] = {
            "date": now(),
            "machine": machine(),
            "render": render_times(Path(work), args.rounds, compiled),
            "update": update_times(Path(work), compiled),
        }
    if not args.skip_matrix:
        matrix = matrix_times(args.matrix or "covering", args.from_log)
        results["matrix"] = {"date": results["date"], **matrix}
    elif (RESULTS / "template.json").exists():
        results["matrix"] = load_results("template").get("matrix")
    print_results(results)
    if not args.no_save:
        print(f"saved {save_results('template', results)}")
