"""The variant matrix, derived from copier.yml.

A variant is one combination of the answers that shape what is rendered
(every question with choices, and every yes/no question). Combinations that
copier.yml itself refuses (a validator fails) are not variants; a question
that is not asked (its `when` is false) takes its default. Adding a choice to
copier.yml adds variants here without touching the tests.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from copier import run_copy, run_update
from jinja2 import Environment

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
COPIER_YML = TEMPLATE_ROOT / "copier.yml"

# Answers given to every variant; the matrix varies the rest.
BASE_ANSWERS: dict[str, Any] = {
    "service_name": "orders-api",
    "description": "Takes and tracks orders",
    "team": "commerce",
    "http_port": 8123,
}


@cache
def questions() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(COPIER_YML.read_text())
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def _choice_values(spec: Mapping[str, Any]) -> list[Any]:
    choices = spec["choices"]
    return list(choices.values()) if isinstance(choices, dict) else list(choices)


def shaping_questions() -> dict[str, list[Any]]:
    """The questions that pick a variant, with every value each can take."""
    shaping: dict[str, list[Any]] = {}
    for name, spec in questions().items():
        if "choices" in spec:
            shaping[name] = _choice_values(spec)
        elif spec.get("type") == "bool":
            shaping[name] = [False, True]
    return shaping


@cache
def _jinja() -> Environment:
    """A Jinja environment with the validator filters copier.yml uses."""
    spec = importlib.util.spec_from_file_location(
        "template_validators", TEMPLATE_ROOT / "extensions" / "validators.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError("extensions/validators.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = Environment(autoescape=False)
    module.AnswerValidators(env)
    return env


def _render(expression: Any, answers: Mapping[str, Any]) -> str:
    if not isinstance(expression, str):
        return str(expression)
    return _jinja().from_string(expression).render(**answers).strip()


def answered_default(question: str, answers: Mapping[str, Any]) -> Any:
    """The default Copier would use for a question, rendered and cast to its type."""
    spec = questions()[question]
    default = spec.get("default")
    if not isinstance(default, str):
        return default
    rendered = _render(default, answers)
    if spec.get("type") == "bool":
        return rendered.lower() in ("true", "yes", "1")
    return rendered


def _is_asked(spec: Mapping[str, Any], answers: Mapping[str, Any]) -> bool:
    when = spec.get("when", True)
    return _render(when, answers).lower() not in ("false", "", "0", "no")


@dataclass(frozen=True)
class Variant:
    answers: tuple[tuple[str, Any], ...]

    @property
    def data(self) -> dict[str, Any]:
        return {**BASE_ANSWERS, **dict(self.answers)}

    @property
    def id(self) -> str:
        def short(value: Any) -> str:
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)

        return "-".join(f"{name}={short(value)}" for name, value in self.answers)

    @property
    def code(self) -> tuple[tuple[str, Any], ...]:
        """The answers that shape the code: all but the deploy answers."""
        return tuple((name, value) for name, value in self.answers if name not in DEPLOY_QUESTIONS)


def _normalise(combination: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answers Copier would end with, or None if copier.yml refuses them."""
    answers = {**BASE_ANSWERS, **combination}
    for name, spec in questions().items():
        if name in combination and not _is_asked(spec, answers):
            answers[name] = answered_default(name, answers)
        validator = spec.get("validator")
        if validator and name in combination and _render(validator, answers):
            return None
    return {name: answers[name] for name in combination}


@cache
def all_variants() -> tuple[Variant, ...]:
    shaping = shaping_questions()
    seen: dict[tuple[tuple[str, Any], ...], Variant] = {}
    for values in itertools.product(*shaping.values()):
        answers = _normalise(dict(zip(shaping, values, strict=True)))
        if answers is not None:
            key = tuple(answers.items())
            seen.setdefault(key, Variant(key))
    return tuple(seen.values())


# Answers that change only deploy files (CI, manifests), which the static checks cover.
DEPLOY_QUESTIONS = ("ci", "kubernetes")


@cache
def code_variants() -> tuple[Variant, ...]:
    """One variant per combination of the answers that shape the code.

    The deploy answers are taken in turn, so that each of their values is
    rendered with many combinations of the others; `all_variants` has every
    combination of both.
    """
    chosen: dict[tuple[tuple[str, Any], ...], Variant] = {}
    for variant in all_variants():
        chosen.setdefault(variant.code, variant)
    deploy_combinations = sorted(
        {
            tuple((name, value) for name, value in variant.answers if name in DEPLOY_QUESTIONS)
            for variant in all_variants()
        },
        key=repr,
    )
    by_answers = {variant.answers: variant for variant in all_variants()}
    rotated = []
    for index, key in enumerate(chosen):
        deploy = dict(deploy_combinations[index % len(deploy_combinations)])
        answers = tuple((name, deploy.get(name, value)) for name, value in chosen[key].answers)
        rotated.append(by_answers.get(answers, chosen[key]))
    return tuple(rotated)


def _pairs(variant: Variant) -> Iterator[tuple[tuple[str, Any], tuple[str, Any]]]:
    return itertools.combinations(variant.answers, 2)


@cache
def covering_variants() -> tuple[Variant, ...]:
    """A small set of variants in which every possible pair of answers occurs."""
    return covering(all_variants())


def covering(variants: tuple[Variant, ...]) -> tuple[Variant, ...]:
    """A small subset of `variants` in which every pair of answers they have occurs.

    Greedy: repeatedly take the variant that covers the most pairs not yet
    covered. Only pairs that some of the variants have are required.
    """
    uncovered = {pair for variant in variants for pair in _pairs(variant)}
    chosen: list[Variant] = []
    while uncovered:
        best = max(variants, key=lambda variant: len(uncovered.intersection(_pairs(variant))))
        chosen.append(best)
        uncovered.difference_update(_pairs(best))
    return tuple(chosen)


def render(
    destination: Path, data: Mapping[str, Any], template: Path = TEMPLATE_ROOT, ref: str = "HEAD"
) -> Path:
    """Render the template at a Git ref (the working tree at HEAD) non-interactively."""
    run_copy(
        str(template),
        str(destination),
        data=dict(data),
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref=ref,
    )
    return destination


def update(service: Path, data: Mapping[str, Any] | None = None) -> None:
    """Update a rendered service to the template's HEAD, asking only new questions."""
    run_update(
        str(service),
        data=dict(data or {}),
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
        skip_answered=True,
        vcs_ref="HEAD",
    )
