"""The fleet view: which template release each service is on, and whether it is behind.

    uv run python scripts/fleet.py path/to/services

Every direct subfolder with a `.copier-answers.yml` is a service checkout. For
each, the table shows its template version (from the answers file), the
latest release of its template (asked with `copier check-update`, which reads
the template's tags), and its answers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ANSWERS_FILE = ".copier-answers.yml"
SHOWN_ANSWERS = ("database", "broker", "auth", "worker", "example_feature", "ci", "kubernetes")


@dataclass
class ServiceStatus:
    name: str
    version: str
    latest: str
    behind: str
    answers: str


def copier_executable() -> str:
    beside = Path(sys.executable).parent / "copier"
    return str(beside) if beside.exists() else "copier"


def describe(answer: object) -> str:
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    return str(answer)


def status_of(checkout: Path) -> ServiceStatus:
    answers = yaml.safe_load((checkout / ANSWERS_FILE).read_text())
    shown = " ".join(f"{key}={describe(answers[key])}" for key in SHOWN_ANSWERS if key in answers)
    check = subprocess.run(
        [copier_executable(), "check-update", "--output-format", "json"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        reason = (check.stderr.strip().splitlines() or ["copier check-update failed"])[-1]
        return ServiceStatus(checkout.name, str(answers.get("_commit")), "?", reason, shown)
    result = json.loads(check.stdout)
    return ServiceStatus(
        name=checkout.name,
        version=result["current_version"],
        latest=result["latest_version"],
        behind="yes" if result["update_available"] else "no",
        answers=shown,
    )


def render_table(rows: list[ServiceStatus]) -> str:
    header = ("service", "version", "latest", "behind", "answers")
    cells = [header, *((r.name, r.version, r.latest, r.behind, r.answers) for r in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", type=Path, help="folder holding the service checkouts")
    args = parser.parse_args(argv)
    checkouts = sorted(path for path in args.services.iterdir() if (path / ANSWERS_FILE).is_file())
    if not checkouts:
        print(f"no service checkouts (folders with {ANSWERS_FILE}) in {args.services}")
        return 1
    rows = [status_of(checkout) for checkout in checkouts]
    print(render_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
