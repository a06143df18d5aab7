"""Start-up: import time, and time from process start to the first /readyz 200.

The import is what `python -m <package> serve` imports before it builds the
app (every command module, the app, the server), timed inside the interpreter;
the bare app imports FastAPI and uvicorn. `python -c pass` is the interpreter's
own start and exit.

Renders the default variant and the full stack (PostgreSQL, the Redis broker,
JWT, the example feature, the worker) as the container image has them:
bytecode compiled, no development dependencies. Compares them with a bare
FastAPI app and the interpreter alone, in the full stack's environment, and
with `--baseline-ref` with the full stack rendered at another Git ref. Rounds
are interleaved; figures are medians.

    uv run python -m benchmarks startup [--rounds 10] [--baseline-ref v0.8.0]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    APPS,
    DEFAULT_VARIANT,
    FULL_VARIANT,
    PACKAGE,
    Service,
    create_database,
    drop_database,
    free_port,
    machine,
    median,
    now,
    print_table,
    production_env,
    render_service,
    save_results,
    stop,
    versions,
    wait_for_status,
)

# The full stack as deployed: the benchmarks' full variant, with a broker and its worker.
FULL_STACK: dict[str, Any] = {**FULL_VARIANT, "broker": "redis", "worker": True}
# Not the development default, which production refuses.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
# Everything `python -m <package> serve` imports before it builds the app.
SERVE_IMPORTS = (
    f"from {PACKAGE}.platform.cli import load_commands; load_commands(); "
    f"import {PACKAGE}.app, {PACKAGE}.platform.server"
)
IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
TOP_PACKAGES = 10


@dataclass(frozen=True)
class Subject:
    """One thing that starts: its import, and the server it runs."""

    name: str
    python: Path
    cwd: Path
    env: dict[str, str]
    import_code: str
    serve: list[str] | None


def time_import(subject: Subject) -> float:
    """Seconds the import takes, timed inside a fresh interpreter."""
    code = (
        "import time; started = time.perf_counter()\n"
        f"{subject.import_code}\n"
        "print(time.perf_counter() - started)"
    )
    completed = subprocess.run(
        [str(subject.python), "-c", code],
        cwd=subject.cwd,
        env=subject.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def time_interpreter(subject: Subject) -> float:
    """Seconds from process start to exit for `python -c pass`."""
    started = time.perf_counter()
    subprocess.run([str(subject.python), "-c", "pass"], env=subject.env, check=True, timeout=60)
    return time.perf_counter() - started


def time_to_ready(subject: Subject) -> float:
    """Seconds from process start to the first 200 from /readyz."""
    assert subject.serve is not None
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(subject.python), *subject.serve, "--port", str(port)],
        cwd=subject.cwd,
        env=subject.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_status(process, port, "/readyz", poll_seconds=0.002)
        return time.perf_counter() - started
    finally:
        stop(process)


def import_profile(subject: Subject) -> list[dict[str, Any]]:
    """Where import time goes: self time summed by top-level package (`-X importtime`)."""
    completed = subprocess.run(
        [str(subject.python), "-X", "importtime", "-c", subject.import_code],
        cwd=subject.cwd,
        env=subject.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    by_package: dict[str, int] = defaultdict(int)
    for line in completed.stderr.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match:
            by_package[match.group(4).split(".")[0]] += int(match.group(1))
    ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)
    return [{"package": name, "ms": micros / 1000} for name, micros in ranked[:TOP_PACKAGES]]


def subjects(
    default: Service, full: Service, baseline: Service | None, database_url: str
) -> list[Subject]:
    full_env = production_env(
        DATABASE_URL=database_url, JWT_SECRET=secrets.token_urlsafe(48), BROKER_URL=REDIS_URL
    )
    bare_env = production_env()
    found = [
        Subject("python -c pass", full.python, APPS, bare_env, "pass", None),
        Subject("bare FastAPI", full.python, APPS, bare_env, "import bare_app", ["bare_app.py"]),
        Subject(
            "service (defaults)",
            default.python,
            default.root,
            production_env(),
            SERVE_IMPORTS,
            ["-m", PACKAGE, "serve"],
        ),
    ]
    if baseline is not None:
        found.append(
            Subject(
                "service (full stack, baseline)",
                baseline.python,
                baseline.root,
                full_env,
                SERVE_IMPORTS,
                ["-m", PACKAGE, "serve"],
            )
        )
    # Last: the import profile is taken of it.
    found.append(
        Subject(
            "service (full stack)",
            full.python,
            full.root,
            full_env,
            SERVE_IMPORTS,
            ["-m", PACKAGE, "serve"],
        )
    )
    return found


def measure(plan: Sequence[Subject], rounds: int) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {
        subject.name: {"import": [], "ready": []} for subject in plan
    }
    for round_number in range(rounds):
        for subject in plan:
            timer = time_interpreter if subject.import_code == "pass" else time_import
            samples[subject.name]["import"].append(timer(subject))
            if subject.serve is not None:
                samples[subject.name]["ready"].append(time_to_ready(subject))
        print(f"round {round_number + 1}/{rounds} done", flush=True)
    return samples


def summarise(samples: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, measured in samples.items():
        ready = measured["ready"]
        rows.append(
            {
                "subject": name,
                "import_ms": median(measured["import"]) * 1000,
                "ready_ms": median(ready) * 1000 if ready else None,
            }
        )
    bare = next(row for row in rows if row["subject"] == "bare FastAPI")
    for row in rows:
        row["import_ratio"] = row["import_ms"] / bare["import_ms"]
        row["ready_ratio"] = row["ready_ms"] / bare["ready_ms"] if row["ready_ms"] else None
    return rows


def print_rows(rows: Sequence[dict[str, Any]], profile: Sequence[dict[str, Any]]) -> None:
    def cell(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    print_table(
        ["subject", "import ms", "x bare", "to /readyz ms", "x bare"],
        [
            [
                row["subject"],
                cell(row["import_ms"], ".0f"),
                cell(row["import_ratio"], ".2f"),
                cell(row["ready_ms"], ".0f"),
                cell(row["ready_ratio"], ".2f"),
            ]
            for row in rows
        ],
    )
    print("\nimport time of the full stack by package (self time, -X importtime):")
    print_table(["package", "ms"], [[entry["package"], f"{entry['ms']:.0f}"] for entry in profile])


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    print("rendering and syncing the default variant and the full stack ...", flush=True)
    default = render_service(work / "default", DEFAULT_VARIANT, dev=False)
    full = render_service(work / "full", FULL_STACK, dev=False)
    baseline = None
    if args.baseline_ref is not None:
        print(f"rendering the full stack at {args.baseline_ref} ...", flush=True)
        baseline = render_service(work / "baseline", FULL_STACK, ref=args.baseline_ref, dev=False)
    database_url = create_database(full)
    try:
        plan = subjects(default, full, baseline, database_url)
        samples = measure(plan, args.rounds)
        profile = import_profile(plan[-1])
    finally:
        drop_database(full)
    return {
        "date": now(),
        "machine": machine(),
        "versions": versions(full),
        "rounds": args.rounds,
        "baseline_ref": args.baseline_ref,
        "full_stack": FULL_STACK,
        "rows": summarise(samples),
        "import_profile": profile,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--baseline-ref", help="also start the full stack rendered at this Git ref, to compare"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; keep the results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
        results = run(args, Path(work))
    print_rows(results["rows"], results["import_profile"])
    if not args.no_save:
        print(f"saved {save_results('startup', results)}")
