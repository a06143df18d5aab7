"""Print the saved results (benchmarks/results/*.json) as Markdown tables, for the docs.

uv run python -m benchmarks report
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from benchmarks.common import RESULTS, load_results


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def about(results: dict[str, Any]) -> str:
    found = results.get("versions")
    stack = ""
    if found:
        stack = (
            f"FastAPI {found['fastapi']}, uvicorn {found['uvicorn']}, Python {found['python']}; "
        )
    machine = results["machine"]
    return f"_{results['date']}; {stack}{machine['cores']} cores, {machine['cpu']}._"


def http() -> str:
    results = load_results("http")
    rows = [
        [
            f"`{row['route']}`",
            row["server"],
            f"{row['rps']:.0f}",
            f"{row['rps_ratio']:.2f}",
            f"{row['p50_ms']:.2f}",
            f"{row['p50_ratio']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['p99_ratio']:.2f}",
        ]
        for row in results["rows"]
    ]
    headers = ["route", "server", "req/s", "x bare", "p50 ms", "x bare", "p99 ms", "x bare"]
    loads = ", ".join(results.get("load_average_after_each_round", []))
    return (
        f"{about(results)}\n\n{table(headers, rows)}\n\n"
        f"{results['load_generator']}, {results['connections']} connections, "
        f"{results['rounds']} rounds of {results['seconds_per_run']} s; "
        f"load average after each round: {loads}."
    )


def cost() -> str:
    results = load_results("request_cost")
    rows = [
        [row["app"], f"{row['us_per_request']:.1f}", f"{row['over_bare_us']:+.1f}"]
        for row in results["rows"]
    ]
    return f"{about(results)}\n\n" + table(["app", "µs per request", "over bare"], rows)


def startup() -> str:
    results = load_results("startup")

    def cell(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    rows = [
        [
            row["subject"],
            cell(row["import_ms"], ".0f"),
            cell(row["import_ratio"], ".2f"),
            cell(row["ready_ms"], ".0f"),
            cell(row["ready_ratio"], ".2f"),
        ]
        for row in results["rows"]
    ]
    headers = ["", "import ms", "x bare", "start to /readyz ms", "x bare"]
    packages = [[entry["package"], f"{entry['ms']:.0f}"] for entry in results["import_profile"]]
    return f"{about(results)}\n\n{table(headers, rows)}\n\n" + table(
        ["package", "import ms (self)"], packages
    )


TEMPLATE_HEADER = ["what", "time", "each source compiled once (as the tests render)"]
MATRIX_STEPS_HEADER = ["matrix step", "seconds, summed over variants", "share"]


def template_rows(results: dict[str, Any]) -> list[list[str]]:
    """The template benchmark's renders, updates and matrix, a row each."""
    render = results["render"]
    rows = [
        [
            "render, `copier copy` in process",
            f"{render['in_process_s']:.2f} s",
            f"{render['in_process_compiled_once_s']:.2f} s",
        ],
        ["render, the `copier` command", f"{render['command_s']:.2f} s", "-"],
        *(
            [f"update from {u['from']}", f"{u['seconds']:.2f} s", f"{u['compiled_once_s']:.2f} s"]
            for u in results["update"]
        ),
    ]
    matrix = results.get("matrix")
    if matrix:
        rows.append(
            [
                f"matrix, {matrix['set']} ({matrix['count']} variants), wall",
                f"{matrix['wall_s']:.0f} s",
                "-",
            ]
        )
        if "every_variant_estimate_s" in matrix:
            rows.append(
                [
                    f"matrix, every variant ({matrix['every_variant_count']}), estimated",
                    f"{matrix['every_variant_estimate_s']:.0f} s",
                    "-",
                ]
            )
    return rows


def matrix_step_rows(matrix: dict[str, Any]) -> list[list[str]]:
    """Each step of the variant suites, summed over the variants, the longest first."""
    ranked = sorted(matrix["step_totals_s"].items(), key=lambda item: item[1], reverse=True)
    total = sum(seconds for _, seconds in ranked)
    return [[name, f"{seconds:.0f}", f"{seconds / total:.0%}"] for name, seconds in ranked]


def template() -> str:
    results = load_results("template")
    matrix = results.get("matrix")
    steps = f"\n\n{table(MATRIX_STEPS_HEADER, matrix_step_rows(matrix))}" if matrix else ""
    return f"{about(results)}\n\n{table(TEMPLATE_HEADER, template_rows(results))}{steps}"


SECTIONS = {"http": http, "request_cost": cost, "startup": startup, "template": template}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    for name, section in SECTIONS.items():
        if (RESULTS / f"{name}.json").exists():
            print(f"<!-- {name} -->\n{section()}\n")
