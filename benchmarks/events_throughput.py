"""Events per second through outbox -> relay -> broker -> consumer -> ack, per broker.

For each broker, renders a PostgreSQL service with that broker, then runs
`apps/events_pipeline.py` in the service's environment: the service's own
relay and consumer (`stack`) and a minimal loop written directly against the
broker's client (`direct`), doing the same work with the same guarantees,
alternated for `--rounds` rounds. Reports the median events per second of
each and their ratio.

    uv run python -m benchmarks events [--events 1000] [--rounds 3] [--brokers redis,nats]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from suite import service_environment

from benchmarks.common import (
    APPS,
    create_database,
    drop_database,
    machine,
    median,
    now,
    render_service,
    save_results,
    versions,
)

BROKERS = ("redis", "rabbitmq", "nats")
BROKER_URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
}


def measure(broker: str, events: int, rounds: int, workdir: Path) -> dict[str, Any]:
    answers = {"database": "postgresql", "broker": broker, "example_feature": False}
    service = render_service(workdir / broker, answers)
    database_url = create_database(service)
    try:
        migrate_env = {**service_environment(), "DATABASE_URL": database_url}
        service.run("-m", "orders_api", "migrate", env=migrate_env)
        runs: dict[str, list[float]] = {"stack": [], "direct": []}
        for _ in range(rounds):
            for mode in ("stack", "direct"):
                output = service.run(
                    str(APPS / "events_pipeline.py"),
                    mode,
                    broker,
                    database_url,
                    BROKER_URLS[broker],
                    str(events),
                )
                result = json.loads(output.strip().splitlines()[-1])
                runs[mode].append(result["events_per_second"])
                print(f"  {broker:8} {mode:6} {result['events_per_second']:8.1f} events/s")
    finally:
        drop_database(service)
    stack, direct = median(runs["stack"]), median(runs["direct"])
    return {
        "broker": broker,
        "stack_events_per_second": stack,
        "direct_events_per_second": direct,
        "ratio": round(stack / direct, 2),
        "runs": runs,
        "versions": versions(service),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| Broker | Service (events/s) | Direct loop (events/s) | Ratio |",
        "|--------|-------------------:|-----------------------:|------:|",
    ]
    for row in results:
        lines.append(
            f"| {row['broker']} | {row['stack_events_per_second']:.0f} "
            f"| {row['direct_events_per_second']:.0f} | {row['ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks events", description=__doc__)
    parser.add_argument("--events", type=int, default=1000, help="events per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per broker")
    parser.add_argument("--brokers", default=",".join(BROKERS), help="comma-separated")
    args = parser.parse_args(argv)
    brokers = [broker for broker in args.brokers.split(",") if broker]
    with tempfile.TemporaryDirectory(prefix="events-bench-") as workdir:
        results = [measure(broker, args.events, args.rounds, Path(workdir)) for broker in brokers]
    print()
    print(table(results))
    path = save_results(
        "events",
        {
            "date": now(),
            "machine": machine(),
            "events_per_run": args.events,
            "rounds": args.rounds,
            "results": results,
        },
    )
    print(f"\nresults: {path}")
