"""Plot the latest HTTP results (benchmarks/results/http.json) for the docs page.

uv run --group bench python -m benchmarks plot [--output docs/benchmarks/http.png]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, load_results

DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks" / "http.png"
THROUGHPUT_TARGET = 0.80
P99_TARGET = 1.5
ROUTE_ORDER = ("GET /livez", "GET /api/v1/jobs/{id}")
# Bar colours by server: the ceiling, the floor, and the rendered service.
COLOURS = {"bare": "#7a7a7a", "BaseHTTPMiddleware": "#d68910", "service": "#1f8a70"}


BASELINE_COLOUR = "#8fd3c0"


def colour(server: str) -> str:
    if "baseline" in server:
        return BASELINE_COLOUR
    return next(value for key, value in COLOURS.items() if server.startswith(key))


def order(row: dict[str, Any]) -> tuple[int, int, str]:
    kinds = list(COLOURS)
    kind = next(index for index, key in enumerate(kinds) if row["server"].startswith(key))
    return (ROUTE_ORDER.index(row["route"]), kind, row["server"])


def panel(
    axis: Any, rows: Sequence[dict[str, Any]], key: str, title: str, target: float, label: str
) -> None:
    """One horizontal bar per server and route, with the target as a dashed line."""
    names = [f"{row['server']}\n{row['route']}" for row in rows]
    values = [row[key] for row in rows]
    bars = axis.barh(names, values, color=[colour(row["server"]) for row in rows])
    axis.bar_label(bars, labels=[f"{value:.2f}x" for value in values], padding=3, fontsize=8)
    axis.axvline(target, color="#c0392b", linestyle="--", linewidth=1, label=label)
    axis.axvline(1.0, color="#333333", linewidth=0.8)
    axis.set_title(title, fontsize=10)
    axis.invert_yaxis()
    axis.tick_params(axis="y", labelsize=8)
    axis.set_xlim(0, max([*values, target]) * 1.25)
    axis.legend(fontsize=8, loc="lower right")


def plot(results: dict[str, Any], output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(results["rows"], key=order)
    figure, (throughput, p99) = plt.subplots(1, 2, figsize=(11, 0.55 * len(rows) + 1.8))
    panel(
        throughput,
        rows,
        "rps_ratio",
        "Throughput, x the bare app (higher is better)",
        THROUGHPUT_TARGET,
        f"target {THROUGHPUT_TARGET}x",
    )
    panel(
        p99,
        rows,
        "p99_ratio",
        "p99 latency, x the bare app (lower is better)",
        P99_TARGET,
        f"target {P99_TARGET}x",
    )
    p99.set_yticklabels([])
    versions = results["versions"]
    figure.suptitle(
        f"{results['date']}: FastAPI {versions['fastapi']}, uvicorn {versions['uvicorn']}, "
        f"Python {versions['python']}, {results['machine']['cores']} cores, "
        f"{results['load_generator']}, {results['connections']} connections, "
        f"median of {results['rounds']} rounds",
        fontsize=9,
    )
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    print(f"wrote {plot(load_results('http'), args.output)}")
