"""The template repository's own checks: docs build strictly, code is lint clean and typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from matrix import TEMPLATE_ROOT

BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=TEMPLATE_ROOT, capture_output=True, text=True, check=False, timeout=300
    )


def test_docs_build_strictly(tmp_path: Path) -> None:
    result = run(str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert result.returncode == 0, result.stdout + result.stderr
    questions = (tmp_path / "site" / "reference" / "questions" / "index.html").read_text()
    assert "service_name" in questions
    assert "is not a valid service name" in questions


def test_repository_code_is_lint_and_format_clean() -> None:
    for command in (("check", "."), ("format", "--check", ".")):
        result = run(str(BIN / "ruff"), *command)
        assert result.returncode == 0, result.stdout + result.stderr


def test_repository_code_passes_strict_type_checking() -> None:
    # pyproject.toml names the files and sets strict mode, as for a rendered service.
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
