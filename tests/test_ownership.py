"""Team-owned files do not change with an answer; every rendered file has exactly one owner.

Pairs of services that differ in one answer are rendered and compared:
every team-owned file present in both must be byte-identical unless
extensions/ownership.toml lists it as an exception for that answer, and the
team's end of a platform file (README.md, .env.example) must be identical.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from matrix import BASE_ANSWERS, TEMPLATE_ROOT, Variant, all_variants
from renders import rendered_once

# The answers that shape code; ci and kubernetes change only platform-owned deploy files.
CHANGED_ANSWERS = ("database", "broker", "auth", "worker", "example_feature")
# Pairs taken for each change of an answer, e.g. broker redis -> none, with
# the other answers spread across the matrix; bounded so the test stays quick.
PAIRS_PER_CHANGE = {"database": 2, "broker": 1, "auth": 1, "worker": 4, "example_feature": 4}
PACKAGE = BASE_ANSWERS["service_name"].replace("-", "_")


def load_ownership_module() -> ModuleType:
    path = TEMPLATE_ROOT / "extensions" / "ownership.py"
    spec = importlib.util.spec_from_file_location("template_ownership", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


OWNERSHIP: Any = load_ownership_module().load_ownership()


def one_answer_pairs() -> Iterator[tuple[str, Variant, Variant]]:
    """For each answer, pairs of valid variants that differ in that answer only."""
    variants = all_variants()
    by_answers = {variant.answers: variant for variant in variants}
    for question in CHANGED_ANSWERS:
        values = sorted({dict(variant.answers)[question] for variant in variants}, key=repr)
        changes: dict[tuple[Any, Any], list[tuple[Variant, Variant]]] = {}
        for variant in variants:
            answers = dict(variant.answers)
            for value in values:
                if repr(value) <= repr(answers[question]):
                    continue
                changed = tuple(
                    (name, value if name == question else current)
                    for name, current in variant.answers
                )
                if changed in by_answers:
                    key = (answers[question], value)
                    changes.setdefault(key, []).append((variant, by_answers[changed]))
        for pairs in changes.values():
            count = PAIRS_PER_CHANGE[question]
            step = max(1, len(pairs) // count)
            for before, after in pairs[::step][:count]:
                yield question, before, after


PAIRS = list(one_answer_pairs())


def files_of(service: Path) -> set[str]:
    return {
        path.relative_to(service).as_posix()
        for path in service.rglob("*")
        if path.is_file() and ".git" not in path.parts
    }


def team_section(text: str, heading: str) -> str | None:
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith(heading):
            return "".join(lines[index:])
    return None


@pytest.mark.parametrize(
    ("question", "before", "after"),
    PAIRS,
    ids=[
        f"{question}:{before.id}->{dict(after.answers)[question]}"
        for question, before, after in PAIRS
    ],
)
def test_team_files_do_not_change_with_an_answer(
    question: str,
    before: Variant,
    after: Variant,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first = rendered_once(tmp_path_factory, before)
    second = rendered_once(tmp_path_factory, after)
    for service in (first, second):
        owners = {path: OWNERSHIP.owners_of(path, PACKAGE) for path in files_of(service)}
        unowned = {path: found for path, found in owners.items() if len(found) != 1}
        assert unowned == {}, f"files without exactly one owner: {unowned}"
    changed = []
    for path in sorted(files_of(first) & files_of(second)):
        if OWNERSHIP.owners_of(path, PACKAGE) != ["team"]:
            continue
        if OWNERSHIP.excepted(path, question, PACKAGE):
            continue
        if (first / path).read_bytes() != (second / path).read_bytes():
            changed.append(path)
    assert changed == [], f"team-owned files change with {question}: {changed}"
    for section in OWNERSHIP.team_sections:
        ends = [
            team_section((service / section.path).read_text(), section.heading)
            for service in (first, second)
        ]
        assert ends[0] is not None, f"{section.path} has no {section.heading!r} section"
        assert ends[0] == ends[1], f"the team's end of {section.path} changes with {question}"


def test_every_change_of_answer_is_compared() -> None:
    compared = {question for question, _, _ in PAIRS}
    assert compared == set(CHANGED_ANSWERS)


def test_exceptions_name_team_files_and_real_answers() -> None:
    questions = {name for name, _ in all_variants()[0].answers}
    for exception in OWNERSHIP.exceptions:
        assert exception.answer in questions, exception
        assert exception.reason.strip(), exception
        path = exception.path.format(package=PACKAGE)
        assert OWNERSHIP.owners_of(path, PACKAGE) == ["team"], exception
