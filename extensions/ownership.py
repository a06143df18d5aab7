"""Who owns each file of a rendered service: extensions/ownership.toml, loaded and matched.

The template's tests check the rendered services against it, and the docs
render it; it is not a Jinja extension and Copier does not load it.
"""

import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

OWNERSHIP_TOML = Path(__file__).with_name("ownership.toml")
OWNERS = ("team", "platform")


@dataclass(frozen=True)
class OwnershipException:
    """A team-owned file that changes with `answer`, and why."""

    path: str
    answer: str
    reason: str


@dataclass(frozen=True)
class TeamSection:
    """The end of a platform file, from the line starting with `heading`, is the team's."""

    path: str
    heading: str


@dataclass(frozen=True)
class Ownership:
    patterns: dict[str, tuple[str, ...]]
    descriptions: dict[str, str]
    team_sections: tuple[TeamSection, ...]
    exceptions: tuple[OwnershipException, ...]

    def owners_of(self, path: str, package: str) -> list[str]:
        """Every owner with a pattern matching `path` (a rendered service's relative path)."""
        return [
            owner
            for owner in OWNERS
            if any(matches(pattern, path, package) for pattern in self.patterns[owner])
        ]

    def excepted(self, path: str, answer: str, package: str) -> bool:
        return any(
            exception.answer == answer and matches(exception.path, path, package)
            for exception in self.exceptions
        )


def matches(pattern: str, path: str, package: str) -> bool:
    """`*` matches within one segment, `**` any number of segments."""
    return _match(pattern.format(package=package).split("/"), path.split("/"))


def _match(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(pattern[1:], parts[index:]) for index in range(len(parts) + 1))
    return (
        bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])
    )


@cache
def load_ownership(path: Path = OWNERSHIP_TOML) -> Ownership:
    data = tomllib.loads(path.read_text())
    return Ownership(
        patterns={owner: tuple(data[owner]["paths"]) for owner in OWNERS},
        descriptions={owner: data[owner]["description"] for owner in OWNERS},
        team_sections=tuple(TeamSection(**section) for section in data.get("team_sections", [])),
        exceptions=tuple(
            OwnershipException(**exception) for exception in data.get("exceptions", [])
        ),
    )
