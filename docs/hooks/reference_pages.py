"""Reference pages generated from the template at build time.

A page asks for generated content with a marker comment on a line of its own:

    <!-- generated: questions -->      the questions in copier.yml
    <!-- generated: dependencies -->   the pinned versions in extensions/dependencies.toml
    <!-- generated: ownership -->      who owns each file, from extensions/ownership.toml

Both are built from the template's own files: copier.yml is read, and its
defaults, `when` conditions and validators are rendered with the Jinja
extensions it declares, loaded from extensions/ the way Copier loads them.
What a validator refuses is found by calling it with known-bad answers and
keeping each distinct message, so the page changes when the code does.
"""

from __future__ import annotations

import html
import importlib.util
import itertools
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

MARKER = re.compile(r"^<!--\s*generated:\s*(?P<name>[\w-]+)\s*-->[ \t]*$", re.MULTILINE)
EXPRESSION = re.compile(r"\s*\{\{\s*(?P<body>.*?)\s*\}\}\s*", re.DOTALL)

# Copier always adds these to the environment it renders copier.yml with.
COPIER_EXTENSIONS = ("jinja2_ansible_filters.AnsibleCoreFiltersExtension",)
# Lets Copier load `path.py:Class` entries; here they are loaded by path directly.
EXTENSION_LOADER = "copier_template_extensions.TemplateExtensionLoader"

# Answers tried against every validator, most telling first: each distinct
# message a validator gives is listed once, with the first answer that got it.
TEXT_PROBES: tuple[str, ...] = (
    "Orders API",
    "orders--api",
    "9orders",
    "one\ntwo",
    'say "hi"',
    "a" * 300,
    "class",
    "match",
    "json",
    "fastapi",
    "",
    "   ",
)
INTEGER_PROBES: tuple[int, ...] = (80, 0, 70000)
FLOAT_PROBES: tuple[float, ...] = (-1.0, 0.0, 1e9)
BOOL_PROBES: tuple[bool, ...] = (True, False)
PROBES: dict[str, tuple[Any, ...]] = {
    "str": TEXT_PROBES,
    "int": INTEGER_PROBES,
    "float": FLOAT_PROBES,
    "bool": BOOL_PROBES,
}

FALSE_WORDS = frozenset({"", "n", "no", "f", "false", "off", "~", "null", "none"})
LONGEST_SHOWN_ANSWER = 24

TOML_TABLE = re.compile(r"\[(?P<name>[^\[\]]+)\]")
TOML_KEY = re.compile(r'(?:"(?P<quoted>[^"]+)"|(?P<bare>[\w.-]+))\s*=')
PYTHON_SECTIONS = frozenset({"runtime", "dev", "build"})
PACKAGE_COLUMNS = ["Package", "Version", "Requirement"]
DEPENDENCY_SECTIONS: dict[str, tuple[str, str, list[str]]] = {
    "runtime": ("Runtime", "Installed with the service.", PACKAGE_COLUMNS),
    "dev": ("Development", "Tools the service is tested and checked with.", PACKAGE_COLUMNS),
    "build": ("Build", "The build backend, in `[build-system] requires`.", PACKAGE_COLUMNS),
    "images": ("Container images", "Images the rendered files build on.", ["Image", "Reference"]),
    "ci": (
        "CI actions",
        "Actions the GitHub workflow uses, each pinned by the commit of the release"
        " its comment names: a tag can be moved, a commit cannot.",
        ["Action", "Reference"],
    ),
}


# Markdown helpers


def code(text: str) -> str:
    """`text` as an inline code span, whatever backticks it holds."""
    fence = "``" if "`" in text else "`"
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def prose(text: str) -> str:
    """Plain text safe in a paragraph or a table cell."""
    escaped = html.escape(" ".join(text.split()), quote=False)
    return escaped.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def table(header: list[str], rows: Iterable[Iterable[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def literal(value: Any) -> str:
    """An answer as YAML would write it, shortened when long."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > LONGEST_SHOWN_ANSWER:
            shown = json.dumps(value[:LONGEST_SHOWN_ANSWER] + "…", ensure_ascii=False)
            return f"{shown} ({len(value)} characters)"
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def plain(value: Any) -> str:
    """A choice or default value as the user types it: `none`, not `"none"`."""
    return literal(value) if not isinstance(value, str) or not value.strip() else value


# Loading the template


def load_module(path: Path) -> ModuleType:
    """Import a Python file of the template by path, fresh on every build."""
    spec = importlib.util.spec_from_file_location(f"template_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise PluginError(f"Cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jinja_environment(root: Path, settings: Mapping[str, Any]) -> SandboxedEnvironment:
    """An environment like the one Copier renders copier.yml's expressions in."""
    envops = dict(settings.get("_envops", {}))
    strict = envops.pop("undefined", None) == "jinja2.StrictUndefined"
    environment = SandboxedEnvironment(**envops)
    if strict:
        environment.undefined = StrictUndefined
    for entry in (*COPIER_EXTENSIONS, *settings.get("_jinja_extensions", [])):
        if entry == EXTENSION_LOADER:
            continue
        if ":" in entry:
            path, class_name = entry.split(":", 1)
            environment.add_extension(getattr(load_module(root / path), class_name))
        else:
            environment.add_extension(entry)
    return environment


def is_true(rendered: str) -> bool:
    """How Copier reads a rendered `when`: numbers, YAML booleans, then non-empty."""
    try:
        return float(rendered) != 0
    except ValueError:
        return rendered.strip().lower() not in FALSE_WORDS


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def expression_body(expression: str) -> str:
    """`database != 'none'` from `{{ database != 'none' }}`."""
    match = EXPRESSION.fullmatch(expression)
    return match["body"] if match else expression.strip()


def rule(message: str, answer: Any) -> str:
    """A message with the answer it quotes taken out: the same rule for another answer."""
    text = str(answer)
    for quoted in (f"'{text}'", f'"{text}"'):
        message = message.replace(quoted, "\0")
    if not text.strip():
        return message
    return re.sub(rf"(?<!\w){re.escape(text)}(?!\w)", "\0", message)


@dataclass(frozen=True)
class Choice:
    label: str
    value: Any
    validator: str | None


@dataclass(frozen=True)
class Refusal:
    """Answers a validator refuses, and what it says."""

    answer: Any
    others: dict[str, Any]
    message: str


@dataclass(frozen=True)
class Question:
    name: str
    spec: dict[str, Any]

    @property
    def type_name(self) -> str:
        declared = self.spec.get("type")
        if declared:
            return str(declared)
        default = self.spec.get("default")
        for python_type, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
            if isinstance(default, python_type):
                return name
        return "yaml"

    @property
    def choices(self) -> list[Choice]:
        raw = self.spec.get("choices")
        if raw is None or isinstance(raw, str):
            return []
        pairs: Iterable[tuple[Any, Any]]
        if isinstance(raw, dict):
            pairs = raw.items()
        else:
            pairs = (
                (item[0], item[1]) if isinstance(item, list) and len(item) == 2 else (item, item)
                for item in raw
            )
        choices = []
        for label, value in pairs:
            if isinstance(value, dict):
                choices.append(Choice(str(label), value.get("value"), value.get("validator")))
            else:
                choices.append(Choice(str(label), value, None))
        return choices

    def cast(self, value: Any) -> Any:
        """The answer as Copier stores it for this question's type."""
        if self.type_name == "bool" and isinstance(value, str):
            return is_true(value)
        if self.type_name == "int" and isinstance(value, str) and value.strip():
            return int(value)
        if self.type_name == "float" and isinstance(value, str) and value.strip():
            return float(value)
        return value


class Questionnaire:
    """The questions of copier.yml, rendered the way Copier renders them."""

    def __init__(self, root: Path) -> None:
        settings = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
        self.environment = jinja_environment(root, settings)
        self.questions = {
            name: Question(name, spec if isinstance(spec, dict) else {"default": spec})
            for name, spec in settings.items()
            if not name.startswith("_")
        }
        self.example = self._example_answers()

    def render(self, value: Any, answers: Mapping[str, Any]) -> Any:
        if not is_template(value):
            return value
        return self.environment.from_string(value).render(**answers)

    def referenced(self, expression: str, subject: str | None = None) -> list[str]:
        """The other questions an expression reads, in question order."""
        names = meta.find_undeclared_variables(self.environment.parse(expression))
        return [name for name in self.questions if name in names and name != subject]

    def values(self, name: str) -> list[Any]:
        """Every answer a question can take, or its example answer when that is open."""
        question = self.questions[name]
        if question.choices:
            return [choice.value for choice in question.choices]
        if question.type_name == "bool":
            return [False, True]
        return [self.example[name]]

    def combinations(self, names: list[str]) -> Iterator[dict[str, Any]]:
        for values in itertools.product(*(self.values(name) for name in names)):
            yield dict(zip(names, values, strict=True))

    def _example_answers(self) -> dict[str, Any]:
        """Defaults in question order; the prompt's placeholder where there is none."""
        answers: dict[str, Any] = {}
        for name, question in self.questions.items():
            value = question.spec.get("default", question.spec.get("placeholder", ""))
            answers[name] = question.cast(self.render(value, answers))
        return answers

    def refusals(self, expression: str, subject: str, answers: Iterable[Any]) -> list[Refusal]:
        """Each distinct message `expression` gives for the answers, over every combination
        of the other questions it reads."""
        others = self.referenced(expression, subject)
        found: dict[str, Refusal] = {}
        for answer in answers:
            for combination in self.combinations(others):
                context = {**self.example, **combination, subject: answer}
                message = str(self.render(expression, context)).strip()
                if not message:
                    continue
                found.setdefault(rule(message, answer), Refusal(answer, combination, message))
        return list(found.values())

    def asked_in_brief(self, question: Question) -> str:
        when = question.spec.get("when", True)
        if isinstance(when, str):
            return "conditionally"
        return "always" if when else "never (computed)"

    def describe_asked(self, question: Question) -> str:
        when = question.spec.get("when", True)
        if not isinstance(when, str):
            return "Always." if when else "Never: a computed value."
        outcomes = {
            is_true(str(self.render(when, {**self.example, **combination})))
            for combination in self.combinations(self.referenced(when, question.name))
        }
        text = f"Only when {code(expression_body(when))}."
        if outcomes == {False}:
            text += (
                " No combination of the answers offered in this release makes that true,"
                " so the question is not asked and takes its default."
            )
        return text

    def describe_default(self, question: Question) -> str:
        if "default" not in question.spec:
            text = "None: an answer is required."
            if "placeholder" in question.spec:
                placeholder = self.render(question.spec["placeholder"], self.example)
                text += f" The prompt suggests {code(plain(placeholder))}."
            return text
        default = question.spec["default"]
        if not is_template(default):
            return code(plain(default))
        given = ", ".join(
            f"{name} {code(plain(self.example[name]))}"
            for name in self.referenced(default, question.name)
        )
        derived = code(plain(self.example[question.name]))
        return f"{code(default)}: {derived} for {given}." if given else code(default)

    def default_in_brief(self, question: Question) -> str:
        if "default" not in question.spec:
            return "required"
        default = question.spec["default"]
        if not is_template(default):
            return code(plain(default))
        names = self.referenced(default, question.name)
        return f"derived from {', '.join(names)}" if names else "computed"


# The questions page


def questions_markdown(root: Path) -> str:
    questionnaire = Questionnaire(root)
    summary = table(
        ["Question", "Type", "Default", "Asked"],
        (
            [
                f"[{code(name)}](#{name})",
                code(question.type_name),
                questionnaire.default_in_brief(question),
                questionnaire.asked_in_brief(question),
            ]
            for name, question in questionnaire.questions.items()
        ),
    )
    sections = (question_section(questionnaire, q) for q in questionnaire.questions.values())
    return "\n\n".join([summary, *sections]) + "\n"


def question_section(questionnaire: Questionnaire, question: Question) -> str:
    spec = question.spec
    parts = [f"## {code(question.name)} {{ #{question.name} }}"]
    if spec.get("help"):
        parts.append(prose(str(spec["help"])))
    several = ", several may be chosen" if spec.get("multiselect") else ""
    facts = [
        f"- **Type:** {code(question.type_name)}{several}",
        f"- **Default:** {questionnaire.describe_default(question)}",
        f"- **Asked:** {questionnaire.describe_asked(question)}",
    ]
    if spec.get("secret"):
        facts.append("- **Secret:** the answer is not recorded in `.copier-answers.yml`.")
    parts.append("\n".join(facts))
    if question.choices:
        parts.append(choices_table(questionnaire, question))
    validator = spec.get("validator")
    if isinstance(validator, str):
        parts.append(refusals_block(questionnaire, question, validator))
    return "\n\n".join(parts)


def choices_table(questionnaire: Questionnaire, question: Question) -> str:
    """Value and label of each choice; with a column for choices that a validator can
    withdraw, given other answers."""
    default = questionnaire.example[question.name]
    conditional = any(choice.validator for choice in question.choices)
    rows = []
    for choice in question.choices:
        value = code(plain(choice.value)) + (" (default)" if choice.value == default else "")
        row = [value, prose(choice.label)]
        if conditional:
            refusals = (
                questionnaire.refusals(choice.validator, question.name, [choice.value])
                if choice.validator
                else []
            )
            row.append("<br>".join(describe_refusal(refusal) for refusal in refusals))
        rows.append(row)
    header = ["Value", "Label", *(["Not offered"] if conditional else [])]
    return table(header, rows)


def refusals_block(questionnaire: Questionnaire, question: Question, validator: str) -> str:
    answers = (
        [choice.value for choice in question.choices]
        if question.choices
        else PROBES.get(question.type_name, ())
    )
    refusals = questionnaire.refusals(validator, question.name, answers)
    intro = f"Checked by {code(expression_body(validator))}."
    if not refusals:
        return intro
    rows = ([describe_answers(refusal), prose(refusal.message)] for refusal in refusals)
    return f"{intro} It refuses, for example:\n\n" + table(["Answer", "Message"], rows)


def describe_others(refusal: Refusal) -> str:
    return ", ".join(f"{name} {code(plain(value))}" for name, value in refusal.others.items())


def describe_answers(refusal: Refusal) -> str:
    """`true` with database `none`: the refused answer and the others it was refused with."""
    answer = code(literal(refusal.answer))
    return f"{answer} with {describe_others(refusal)}" if refusal.others else answer


def describe_refusal(refusal: Refusal) -> str:
    """Why a choice is withdrawn: the other answers, then the message."""
    others = describe_others(refusal)
    return f"With {others}: {prose(refusal.message)}" if others else prose(refusal.message)


# The dependencies page


def toml_comments(text: str) -> dict[tuple[str, str], str]:
    """The comment lines just above each key, by (table, key): tomllib drops them."""
    notes: dict[tuple[str, str], str] = {}
    section, comment = "", []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.removeprefix("#").strip())
            continue
        if match := TOML_TABLE.fullmatch(stripped):
            section = match["name"].strip()
        elif (match := TOML_KEY.match(stripped)) and comment:
            notes[(section, match["quoted"] or match["bare"])] = " ".join(comment)
        comment = []
    return notes


def dependency_cells(dependencies: ModuleType, section: str, name: str, value: str) -> list[str]:
    """What templates get for an entry, from the same functions they call."""
    if section in PYTHON_SECTIONS:
        return [code(value), code(dependencies.pin(name))]
    if section == "images":
        return [code(dependencies.image(name))]
    if section == "ci":
        return [code(dependencies.action(name))]
    return [code(value)]


def dependencies_markdown(root: Path) -> str:
    dependencies = load_module(root / "extensions" / "dependencies.py")
    text = (root / "extensions" / "dependencies.toml").read_text(encoding="utf-8")
    bill_of_materials: dict[str, dict[str, str]] = tomllib.loads(text)
    notes = toml_comments(text)

    sections = []
    for section, entries in bill_of_materials.items():
        title, description, header = DEPENDENCY_SECTIONS.get(
            section, (section.title(), "", ["Name", "Value"])
        )
        has_notes = any((section, name) in notes for name in entries)
        rows = (
            [
                code(name),
                *dependency_cells(dependencies, section, name, value),
                *([prose(notes.get((section, name), ""))] if has_notes else []),
            ]
            for name, value in entries.items()
        )
        columns = [*header, *(["Note"] if has_notes else [])]
        parts = [f"## {title}", description, table(columns, rows)]
        sections.append("\n\n".join(part for part in parts if part))
    return "\n\n".join(sections) + "\n"


def prose_with_code(text: str) -> str:
    """Prose whose `backticked` spans stay code."""
    parts = " ".join(text.split()).split("`")
    return "".join(
        code(part) if index % 2 else prose_keeping_spaces(part) for index, part in enumerate(parts)
    )


def prose_keeping_spaces(text: str) -> str:
    """`prose(text)` with the spaces that joined it to code around it."""
    leading = " " if text.startswith(" ") else ""
    trailing = " " if text.endswith(" ") and text.strip() else ""
    return f"{leading}{prose(text)}{trailing}"


def ownership_markdown(root: Path) -> str:
    ownership = load_module(root / "extensions" / "ownership.py").load_ownership(
        root / "extensions" / "ownership.toml"
    )
    sections = []
    for owner, title in (("team", "Team-owned"), ("platform", "Platform-owned")):
        paths = "\n".join(f"- {code(path)}" for path in ownership.patterns[owner])
        sections.append(
            f"## {title}\n\n{prose_with_code(ownership.descriptions[owner])}\n\n{paths}"
        )
    team_sections = table(
        ["File", "The team's from the line starting with"],
        ([code(section.path), code(section.heading)] for section in ownership.team_sections),
    )
    sections.append(f"## Team sections of platform files\n\n{team_sections}")
    exceptions = table(
        ["Team file", "Changes with", "Why"],
        (
            [code(exception.path), code(exception.answer), prose_with_code(exception.reason)]
            for exception in ownership.exceptions
        ),
    )
    sections.append(f"## Team files that change with an answer\n\n{exceptions}")
    return "\n\n".join(sections) + "\n"


GENERATORS: dict[str, Callable[[Path], str]] = {
    "questions": questions_markdown,
    "dependencies": dependencies_markdown,
    "ownership": ownership_markdown,
}


# MkDocs hooks


def template_root(config: MkDocsConfig) -> Path:
    if config.config_file_path is None:
        raise PluginError("The reference pages need mkdocs.yml at the template's root.")
    return Path(config.config_file_path).resolve().parent


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    root = template_root(config)

    def generate(marker: re.Match[str]) -> str:
        name = marker["name"]
        if name not in GENERATORS:
            known = ", ".join(sorted(GENERATORS))
            raise PluginError(f"{page.file.src_uri}: unknown generated content {name!r} ({known})")
        return GENERATORS[name](root)

    return MARKER.sub(generate, markdown)


def on_serve(
    server: LiveReloadServer, config: MkDocsConfig, builder: Callable[..., Any]
) -> LiveReloadServer:
    """Rebuild the reference pages while editing what they are generated from."""
    root = template_root(config)
    server.watch(str(root / "copier.yml"))
    server.watch(str(root / "extensions"))
    return server
