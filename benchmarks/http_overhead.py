"""HTTP overhead: the rendered service beside a bare FastAPI app and a BaseHTTPMiddleware stack.

Renders the default variant and one with every cross-cutting feature on
(PostgreSQL, JWT, the example feature), serves them with their own `serve`
command, and serves a bare FastAPI app (the ceiling) and the same features as
four BaseHTTPMiddleware layers (the floor) from the full variant's
environment, so every server runs the same FastAPI and uvicorn. Each server
runs pinned to CPU 0; the load generator (wrk, or benchmarks/loadgen.py
without it) runs on CPU 1. Rounds are interleaved: every round loads every
server once, in a rotating order, so a noisy neighbour hurts all of them
alike. Figures are medians over rounds; ratios are to the bare app on the
same route, taken round by round.

    uv run --group bench python -m benchmarks http [--rounds 8] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    APPS,
    BENCHMARKS,
    DEFAULT_VARIANT,
    FULL_VARIANT,
    PACKAGE,
    Service,
    create_database,
    development_token,
    drop_database,
    free_port,
    load_results,
    machine,
    median,
    now,
    print_table,
    production_env,
    render_service,
    running,
    save_results,
    stop,
    versions,
    wait_for_status,
)
from benchmarks.plot import DEFAULT_OUTPUT, plot

SERVER_CPU = 0
LOAD_CPU = 1
WRK_SCRIPT = BENCHMARKS / "wrk_report.lua"
LOADGEN = BENCHMARKS / "loadgen.py"
TRIVIAL, ONE_ROW = "GET /livez", "GET /api/v1/jobs/{id}"
BARE = "bare FastAPI"
LAYERED = "BaseHTTPMiddleware x4"
DEFAULT_SERVICE = "service (defaults)"
FULL_SERVICE = "service (full stack)"
BASELINE_SERVICE = "service (full stack, baseline)"

Sample = dict[str, float]
LoadGenerator = Callable[[str, Sequence[str], int, int], Sample]


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    ready_path: str
    port: int = field(default_factory=free_port)


@dataclass(frozen=True)
class Target:
    """One server and one route: what a single load run measures."""

    server: str
    route: str
    url: str
    headers: tuple[str, ...] = ()


def on_cpu(cpu: int) -> Callable[[], None] | None:
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_json(command: Sequence[str], timeout: float) -> Sample:
    """Run a load generator on the load CPU; its last output line, as JSON."""
    completed = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        preexec_fn=on_cpu(LOAD_CPU),
    )
    sample: Sample = json.loads(completed.stdout.strip().splitlines()[-1])
    return sample


def wrk(url: str, headers: Sequence[str], connections: int, seconds: int) -> Sample:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPT)]
    for header in headers:
        command += ["-H", header]
    return run_json([*command, url], timeout=seconds + 30)


def python_loadgen(url: str, headers: Sequence[str], connections: int, seconds: int) -> Sample:
    command = [sys.executable, str(LOADGEN), "--url", url, f"--connections={connections}"]
    command += [f"--seconds={seconds}", *(f"--header={header}" for header in headers)]
    return run_json(command, timeout=seconds + 30)


def load_generator() -> tuple[str, LoadGenerator]:
    """wrk, installed from Debian's packages if it is missing and we may; else the Python one."""
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk with apt-get ...", flush=True)
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(command, capture_output=True, timeout=600, check=False)
    if shutil.which("wrk") is not None:
        return "wrk 4 (1 thread)", wrk
    print("wrk is not available: using benchmarks/loadgen.py", flush=True)
    return "benchmarks/loadgen.py", python_loadgen


def create_job(port: int, token: str) -> str:
    """One job row through the service's own API; its id."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/jobs",
        data=json.dumps({"kind": "echo"}).encode(),
        headers={
            "authorization": f"Bearer {token}",
            "idempotency-key": "benchmark",
            "content-type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        job_id: str = json.load(response)["id"]
        return job_id


def start_server(server: Server) -> subprocess.Popen[bytes]:
    command = [*server.command, "--port", str(server.port)]
    process = subprocess.Popen(
        command,
        cwd=server.cwd,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=on_cpu(SERVER_CPU),
    )
    try:
        wait_for_status(process, server.port, server.ready_path)
    except RuntimeError:
        stop(process)
        raise
    return process


def servers(
    default: Service, full: Service, baseline: Service | None, database_url: str, jwt_secret: str
) -> list[Server]:
    """The bare and layered apps in the full variant's environment, and the services."""
    env = production_env(DATABASE_URL=database_url, JWT_SECRET=jwt_secret)

    def app(name: str, script: str) -> Server:
        command = [str(full.python), str(APPS / script), "--database-url", database_url]
        return Server(name, command, APPS, env, "/livez")

    def service(name: str, rendered: Service, service_env: dict[str, str]) -> Server:
        command = [str(rendered.python), "-m", PACKAGE, "serve"]
        return Server(name, command, rendered.root, service_env, "/readyz")

    found = [
        app(BARE, "bare_app.py"),
        app(LAYERED, "layered_app.py"),
        service(DEFAULT_SERVICE, default, production_env()),
        service(FULL_SERVICE, full, env),
    ]
    if baseline is not None:
        found.append(service(BASELINE_SERVICE, baseline, env))
    return found


def targets(started: Sequence[Server], job_id: str, token: str) -> list[Target]:
    found = []
    for server in started:
        base = f"http://127.0.0.1:{server.port}"
        found.append(Target(server.name, TRIVIAL, f"{base}/livez"))
        if server.name != DEFAULT_SERVICE:
            auth = (f"Authorization: Bearer {token}",)
            found.append(Target(server.name, ONE_ROW, f"{base}/api/v1/jobs/{job_id}", auth))
    return found


def measure(
    generate: LoadGenerator, plan: Sequence[Target], args: argparse.Namespace, loads: list[str]
) -> dict[Target, list[Sample]]:
    """Interleaved rounds: each round loads every target once, starting one further along.

    The machine's load average after each round is appended to `loads`.
    """
    samples: dict[Target, list[Sample]] = {target: [] for target in plan}
    for round_number in range(args.rounds):
        offset = round_number % len(plan)
        for target in [*plan[offset:], *plan[:offset]]:
            generate(target.url, target.headers, args.connections, args.warmup)
            sample = generate(target.url, target.headers, args.connections, args.seconds)
            if sample["errors"]:
                raise RuntimeError(f"{target.server} {target.route}: {sample['errors']} errors")
            samples[target].append(sample)
        load = load_average()
        loads.append(load)
        print(f"round {round_number + 1}/{args.rounds} done, load average {load}", flush=True)
    return samples


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def per_round(run: Sample) -> dict[str, float]:
    return {
        "rps": run["requests"] / run["seconds"],
        "p50_ms": run["p50_us"] / 1000,
        "p99_ms": run["p99_us"] / 1000,
    }


def summarise(samples: dict[Target, list[Sample]]) -> list[dict[str, Any]]:
    """Medians over rounds; each ratio is the median of the round-by-round ratios to the bare app.

    A ratio taken within a round compares servers loaded minutes apart at
    most, so it moves less with a neighbour's load than a ratio of medians.
    """
    rounds = {target: [per_round(run) for run in runs] for target, runs in samples.items()}
    bare = {target.route: rounds[target] for target in rounds if target.server == BARE}
    rows = []
    for target, runs in rounds.items():
        row: dict[str, Any] = {"server": target.server, "route": target.route}
        for metric in ("rps", "p50_ms", "p99_ms"):
            row[metric] = median([run[metric] for run in runs])
            ratios = [
                run[metric] / ceiling[metric]
                for run, ceiling in zip(runs, bare[target.route], strict=True)
            ]
            row[f"{metric.removesuffix('_ms')}_ratio"] = median(ratios)
        row["samples"] = [{key: round(value, 2) for key, value in run.items()} for run in runs]
        rows.append(row)
    return rows


def print_rows(rows: Sequence[dict[str, Any]]) -> None:
    print_table(
        ["route", "server", "req/s", "x bare", "p50 ms", "x bare", "p99 ms", "x bare"],
        [
            [
                row["route"],
                row["server"],
                f"{row['rps']:.0f}",
                f"{row['rps_ratio']:.2f}",
                f"{row['p50_ms']:.2f}",
                f"{row['p50_ratio']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{row['p99_ratio']:.2f}",
            ]
            for row in rows
        ],
    )


def render_services(
    work: Path, baseline_ref: str | None
) -> tuple[Service, Service, Service | None]:
    print("rendering and syncing the default and full variants ...", flush=True)
    default = render_service(work / "default", DEFAULT_VARIANT)
    full = render_service(work / "full", FULL_VARIANT)
    baseline = None
    if baseline_ref is not None:
        print(f"rendering the full variant at {baseline_ref} ...", flush=True)
        baseline = render_service(work / "baseline", FULL_VARIANT, ref=baseline_ref)
    return default, full, baseline


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    generator_name, generate = load_generator()
    default, full, baseline = render_services(work, args.baseline_ref)
    database_url = create_database(full)
    jwt_secret = secrets.token_urlsafe(48)
    full.run("-m", PACKAGE, "migrate", env=production_env(DATABASE_URL=database_url))
    token = development_token(full, jwt_secret)
    plan = servers(default, full, baseline, database_url, jwt_secret)
    try:
        with running([]) as processes:
            for server in plan:
                processes.append(start_server(server))
            full_service = next(server for server in plan if server.name == FULL_SERVICE)
            job_id = create_job(full_service.port, token)
            print(f"loading {len(plan)} servers, {args.rounds} rounds ...", flush=True)
            started_at = time.monotonic()
            loads: list[str] = []
            samples = measure(generate, targets(plan, job_id, token), args, loads)
            elapsed = time.monotonic() - started_at
    finally:
        drop_database(full)
    return {
        "date": now(),
        "machine": machine(),
        "versions": versions(full),
        "load_generator": generator_name,
        "connections": args.connections,
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
        "baseline_ref": args.baseline_ref,
        "measured_seconds": round(elapsed),
        "load_average_after_each_round": loads,
        "rows": summarise(samples),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=4, help="length of one measured run")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured run before each")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--baseline-ref", help="also serve the full variant rendered at this Git ref, to compare"
    )
    parser.add_argument("--no-save", action="store_true", help="print only; keep the results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as work:
        results = run(args, Path(work))
    print_rows(results["rows"])
    if not args.no_save:
        print(f"saved {save_results('http', results)}")
        plot_results()


def plot_results() -> None:
    try:
        print(f"wrote {plot(load_results('http'), DEFAULT_OUTPUT)}")
    except ImportError:
        print("matplotlib is not installed: run with `uv run --group bench` to plot")
