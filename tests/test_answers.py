"""Every question's validator: what it accepts, what it refuses, and what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matrix import BASE_ANSWERS, questions
from matrix import render as render_template


def render(destination: Path, **answers: Any) -> None:
    render_template(destination, {**BASE_ANSWERS, **answers})


def refusal(tmp_path: Path, **answers: Any) -> str:
    """Render with the answers; return Copier's refusal and check nothing was written."""
    destination = tmp_path / "service"
    with pytest.raises(ValueError, match="Validation error") as caught:
        render(destination, **answers)
    assert not destination.exists(), "a refused copy must leave no folder behind"
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("orders-api", True),
        ("a1", True),
        ("billing", True),
        ("ledger-v2-sync", True),
        ("Bad Name!", False),
        ("Orders", False),
        ("orders_api", False),
        ("-orders", False),
        ("orders-", False),
        ("orders--api", False),
        ("9lives", False),
        ("", False),
        ("a" * 33, False),
    ],
)
def test_service_name(name: str, accepted: bool, tmp_path: Path) -> None:
    if accepted:
        render(tmp_path / "service", service_name=name)
        expected_package = name.replace("-", "_")
        assert (tmp_path / "service" / "src" / expected_package / "app.py").is_file()
    else:
        message = refusal(tmp_path, service_name=name)
        assert "is not a valid service name: use kebab-case" in message
        assert "for example: orders-api" in message


@pytest.mark.parametrize(
    ("package", "reason"),
    [
        ("class", "is a Python keyword"),
        ("match", "is a Python keyword"),
        ("json", "is a standard-library module"),
        ("asyncio", "is a standard-library module"),
        ("fastapi", "would shadow a module the service imports"),
        ("tests", "would shadow a module the service imports"),
        ("Orders", "is not a valid package name"),
        ("orders-api", "is not a valid package name"),
        ("_orders", "is not a valid package name"),
    ],
)
def test_package_name_refused(package: str, reason: str, tmp_path: Path) -> None:
    assert reason in refusal(tmp_path, package_name=package)


def test_package_name_is_derived_from_the_service_name(tmp_path: Path) -> None:
    render(tmp_path / "service", service_name="ledger-sync")
    answers = (tmp_path / "service" / ".copier-answers.yml").read_text()
    assert "package_name: ledger_sync" in answers


def test_a_service_name_that_derives_a_stdlib_package_name_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, service_name="json")
    assert "'json' is a standard-library module" in message


def test_a_standard_library_module_missing_from_stdlib_module_names_is_refused(
    tmp_path: Path,
) -> None:
    # `python -m test serve` would run CPython's own test suite.
    assert "test" not in sys.stdlib_module_names
    message = refusal(tmp_path, service_name="test")
    assert "'test' is a standard-library module" in message


@pytest.mark.parametrize("port", [1024, 8000, 65535])
def test_http_port_accepted(port: int, tmp_path: Path) -> None:
    render(tmp_path / "service", http_port=port)
    assert f"http_port: {port}" in (tmp_path / "service" / ".copier-answers.yml").read_text()


@pytest.mark.parametrize("port", [80, 0, 1023, 65536, -1])
def test_http_port_refused(port: int, tmp_path: Path) -> None:
    message = refusal(tmp_path, http_port=port)
    assert f"Port {port} is not allowed: use 1024 to 65535" in message


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("two\nlines", "must be one line"),
        ("x" * 201, "at most 200 characters"),
        ('say "hi"', "must not contain double quotes"),
    ],
)
def test_description_refused(description: str, reason: str, tmp_path: Path) -> None:
    assert reason in refusal(tmp_path, description=description)


@pytest.mark.parametrize("team", ["Platform Team", "", "team_a", "-ops"])
def test_team_refused(team: str, tmp_path: Path) -> None:
    assert "is not a valid team: use a slug" in refusal(tmp_path, team=team)


def test_a_worker_without_a_database_or_broker_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, database="none", broker="none", worker=True)
    assert "A worker needs a database or a broker" in message


def test_a_worker_without_a_broker_or_the_example_feature_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, database="postgresql", example_feature=False, worker=True)
    assert "answer yes to example_feature, or no to worker" in message


@pytest.mark.parametrize("broker", ["redis", "rabbitmq", "nats"])
def test_a_broker_offers_a_worker_without_a_database_or_the_example_feature(
    broker: str, tmp_path: Path
) -> None:
    render(tmp_path / "service", database="none", broker=broker)
    answers = (tmp_path / "service" / ".copier-answers.yml").read_text()
    assert f"broker: {broker}" in answers
    assert "worker: true" in answers
    assert "example_feature" not in answers


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_database_offers_the_example_feature_and_worker_by_default(
    database: str, tmp_path: Path
) -> None:
    render(tmp_path / "service", database=database)
    answers = (tmp_path / "service" / ".copier-answers.yml").read_text()
    assert "example_feature: true" in answers
    assert "worker: true" in answers


@pytest.mark.parametrize("auth", ["none", "api_key", "jwt", "oidc"])
@pytest.mark.parametrize("name", ["q", "a" * 32], ids=["shortest", "longest"])
def test_the_shortest_and_longest_names_still_lint_clean(
    name: str, auth: str, tmp_path: Path
) -> None:
    """Names land in lines of code: the longest must stay within limits, and the
    shortest must not let the formatter join lines written for a longer one."""
    render(tmp_path / "service", service_name=name, database="postgresql", auth=auth)
    ruff = Path(sys.executable).parent / "ruff"
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [str(ruff), *command],
            cwd=tmp_path / "service",
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_feature_without_a_database_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, database="none", example_feature=True)
    assert "The example jobs feature stores jobs in a database" in message


@pytest.mark.parametrize("question", ["database", "broker", "auth", "ci"])
def test_an_answer_outside_the_choices_is_refused(question: str, tmp_path: Path) -> None:
    allowed = list(questions()[question]["choices"].values())
    destination = tmp_path / "service"
    with pytest.raises(ValueError, match="Invalid choice") as caught:
        render(destination, **{question: "kafka"})
    assert not destination.exists()
    for choice in allowed:
        assert choice in str(caught.value)


def test_every_question_has_help_and_every_free_answer_a_validator() -> None:
    for name, spec in questions().items():
        assert spec.get("help"), f"{name} has no help text"
        if "choices" not in spec and spec.get("type") != "bool":
            assert spec.get("validator"), f"{name} accepts any answer"
