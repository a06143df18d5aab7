"""Where a request's CPU time goes: microseconds per GET /livez, in process, layer by layer.

The HTTP benchmark measures what a client sees, and on a shared machine its
figures move with the neighbours' load. This one calls the ASGI apps
directly in the full variant's environment (benchmarks/apps/request_cost_probe.py)
and keeps the fastest of many interleaved rounds, so it is steady enough to
tell what each platform layer costs, and what a change to them gained
(--baseline-ref renders the full variant at another Git ref too).

    uv run python -m benchmarks cost [--baseline-ref REF] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    APPS,
    FULL_VARIANT,
    PACKAGE,
    Service,
    bench_database_url,
    machine,
    now,
    print_table,
    production_env,
    render_service,
    save_results,
    versions,
)

PROBE = APPS / "request_cost_probe.py"
BASELINE_SUFFIX = " (baseline)"


def probe(service: Service, log_level: str, output: Path) -> dict[str, float]:
    """One probe process; microseconds per request for each app it measures."""
    # Production refuses the development DATABASE_URL; /livez never connects to this one.
    env = production_env(DATABASE_URL=bench_database_url(), JWT_SECRET=secrets.token_urlsafe(48))
    command = [str(service.python), str(PROBE), "--package", PACKAGE, "--output", str(output)]
    subprocess.run(
        [*command, "--log-level", log_level],
        cwd=service.root,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=900,
    )
    micros: dict[str, float] = json.loads(output.read_text())
    return micros


def measure(full: Service, baseline: Service | None, repeats: int, work: Path) -> dict[str, float]:
    """The fastest figure for each app over `repeats` alternating runs of each probe."""
    fastest: dict[str, float] = {}
    for _ in range(repeats):
        runs = [(full, "INFO", ""), (full, "WARNING", "")]
        if baseline is not None:
            runs.append((baseline, "INFO", BASELINE_SUFFIX))
        for service, log_level, suffix in runs:
            for name, micros in probe(service, log_level, work / "probe.json").items():
                if suffix and not name.startswith("service"):
                    continue
                key = name + suffix
                fastest[key] = min(fastest.get(key, float("inf")), micros)
    return fastest


def rows(micros: dict[str, float]) -> list[dict[str, Any]]:
    bare = micros["bare FastAPI"]
    return [
        {"app": name, "us_per_request": value, "over_bare_us": value - bare}
        for name, value in micros.items()
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="probe processes per app set")
    parser.add_argument("--baseline-ref", help="also measure the full variant at this Git ref")
    parser.add_argument("--no-save", action="store_true", help="print only; keep the results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as work:
        print("rendering and syncing the full variant ...", flush=True)
        full = render_service(Path(work) / "full", FULL_VARIANT)
        baseline = None
        if args.baseline_ref:
            baseline = render_service(Path(work) / "baseline", FULL_VARIANT, args.baseline_ref)
        micros = measure(full, baseline, args.repeats, Path(work))
        results = {
            "date": now(),
            "machine": machine(),
            "versions": versions(full),
            "baseline_ref": args.baseline_ref,
            "rows": rows(micros),
        }
    print_table(
        ["app (GET /livez, in process)", "us/request", "over bare"],
        [
            [row["app"], f"{row['us_per_request']:.1f}", f"{row['over_bare_us']:+.1f}"]
            for row in results["rows"]
        ],
    )
    if not args.no_save:
        print(f"saved {save_results('request_cost', results)}")
