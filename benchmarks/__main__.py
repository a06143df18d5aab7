"""`python -m benchmarks <name>`: run one benchmark (see benchmarks/README.md)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "http": "benchmarks.http_overhead",
    "startup": "benchmarks.startup",
    "template": "benchmarks.template_times",
    "suites": "benchmarks.suite_environments",
    "cost": "benchmarks.request_cost",
    "events": "benchmarks.events_throughput",
    "plot": "benchmarks.plot",
    "report": "benchmarks.report",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print(f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(BENCHMARKS[sys.argv[1]])
    module.main(sys.argv[2:])


if __name__ == "__main__":
    main()
