"""What the benchmarks share: rendering services, their environments, processes and results.

The template's own test helpers (tests/matrix.py, tests/releases.py,
tests/suite.py) render, tag releases and clean the environment; the
benchmarks use them rather than a second copy of their logic.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matrix import BASE_ANSWERS, render
from suite import service_environment

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
APPS = BENCHMARKS / "apps"
RESULTS = BENCHMARKS / "results"

PACKAGE = "orders_api"
# The default answers, and every cross-cutting feature on.
DEFAULT_VARIANT: dict[str, Any] = {}
FULL_VARIANT: dict[str, Any] = {"database": "postgresql", "auth": "jwt", "example_feature": True}
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DATABASE = f"{PACKAGE}_bench"
# A server that is not answering this long after it was started has failed.
STARTUP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Service:
    """A rendered service with its own virtual environment."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"

    def run(self, *arguments: str, env: Mapping[str, str] | None = None) -> str:
        """Run `python <arguments>` in the service's environment; its standard output."""
        completed = subprocess.run(
            [str(self.python), *arguments],
            cwd=self.root,
            env=dict(env or service_environment()),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"python {' '.join(arguments)} failed:\n{completed.stderr}")
        return completed.stdout


def render_service(
    destination: Path, answers: Mapping[str, Any], ref: str = "HEAD", *, dev: bool = True
) -> Service:
    """Render the template (the working tree at HEAD, or a Git ref) and sync its environment.

    Bytecode is compiled, as the service's container image does; `dev=False`
    leaves out the development dependencies, as the image does too.
    """
    render(destination, {**BASE_ANSWERS, **answers}, ref=ref)
    env = {**service_environment(), "UV_COMPILE_BYTECODE": "1"}
    command = ["uv", "sync", "--quiet", *([] if dev else ["--no-dev"])]
    subprocess.run(command, cwd=destination, env=env, check=True, timeout=900)
    service = Service(destination)
    service.run("-m", "compileall", "-q", "src")
    return service


# Run with the full variant's Python, which has asyncpg: (re)create or drop a database.
DATABASE_SCRIPT = """
import asyncio, sys
import asyncpg

async def main(admin_url, name, action):
    connection = await asyncpg.connect(admin_url)
    await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if action == "create":
        await connection.execute(f"CREATE DATABASE {name}")
    await connection.close()

asyncio.run(main(*sys.argv[1:]))
"""


def bench_database_url() -> str:
    """The benchmark database's SQLAlchemy URL, whether or not it exists yet."""
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{BENCH_DATABASE}"


def create_database(service: Service) -> str:
    """A fresh benchmark database on the local PostgreSQL; its SQLAlchemy URL."""
    service.run("-c", DATABASE_SCRIPT, ADMIN_URL, BENCH_DATABASE, "create")
    return bench_database_url()


def drop_database(service: Service) -> None:
    service.run("-c", DATABASE_SCRIPT, ADMIN_URL, BENCH_DATABASE, "drop")


def production_env(**settings: str) -> dict[str, str]:
    """The environment a container gives the service (see its Dockerfile)."""
    return {
        **service_environment(),
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


def development_token(service: Service, jwt_secret: str) -> str:
    env = {**service_environment(), "ENVIRONMENT": "development", "JWT_SECRET": jwt_secret}
    return service.run("-m", PACKAGE, "token", "--sub", "bench", env=env).strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """The status of a GET on 127.0.0.1, or None when nothing answers yet."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(request)
            status_line = connection.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return None
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def wait_for_status(
    process: subprocess.Popen[bytes], port: int, path: str, poll_seconds: float = 0.005
) -> float:
    """Seconds from now until `path` answers 200; fails if the process exits first."""
    started = time.perf_counter()
    deadline = started + STARTUP_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it answered")
        if http_status(port, path) == 200:
            return time.perf_counter() - started
        time.sleep(poll_seconds)
    raise RuntimeError(f"{path} did not answer 200 within {STARTUP_TIMEOUT_SECONDS}s")


def pin_to_cpu(pid: int, cpu: int) -> None:
    """Keep a process on one CPU, when the machine has more than one."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


def start(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], cpu: int | None = None
) -> subprocess.Popen[bytes]:
    """Start a server; its output is discarded (each log line is still written)."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if cpu is not None:
        pin_to_cpu(process.pid, cpu)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process by its pid, then SIGKILL it if it has not stopped in time."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running(processes: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stop every process in the list on the way out, whatever happens."""
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
    }


def versions(service: Service) -> dict[str, str]:
    """Python, FastAPI and uvicorn as the rendered service has them."""
    script = (
        "import json, platform; from importlib.metadata import version; "
        "print(json.dumps({'python': platform.python_version(), "
        "'fastapi': version('fastapi'), 'uvicorn': version('uvicorn')}))"
    )
    found: dict[str, str] = json.loads(service.run("-c", script))
    return found


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def save_results(name: str, results: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def load_results(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return loaded


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, ["-" * width for width in widths], *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
