"""Resolve an update's conflicts in the team's files where the team only added lines.

The team's files grow at documented extension points: an import and an
`include_router` line in `app.py`, a model in `models.py` (and its name in
`__all__`), a handler in `worker.py`, lines at the end of `README.md` and
`.env.example`. When a release (or a changed answer) rewrites the lines
around such a point, Git's merge marks a conflict although nothing the two
sides did contradicts. Copier runs this script after its own merge:

    team_edits.py [--rename OLD=NEW ...]

For each team-owned file (extensions/ownership.toml) that the merge left
with conflict markers, rejected hunks or unmerged, it takes the team's
change (the old release's rendering -> the team's last commit). When that
change only adds lines, or widens a list such as `__all__`, it is made
again on the new release's rendering: imports among the imports, in order;
other lines before the line they preceded, or at the file's extension point
(the comment saying "... here") when that line is gone; `--rename` rewrites
a renamed call in them. Anything else is left as Copier merged it, for a
person, and the update report lists it.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from moves import ANSWERS_FILE, committed, rendering
from ownership import load_ownership
from update_report import files_with_conflict_markers, git, rejected_hunks, unmerged_paths

LIST_ASSIGNMENT = re.compile(r"^(?P<name>\w+)(?P<annotation>: [^=]+)? = \[(?P<items>.*)\]$")
EXTENSION_POINT = re.compile(r"^\s*#.*\bhere\b")


class CannotReapply(Exception):
    """The team's change is more than added lines; a person merges it."""


@dataclass
class TeamChange:
    """What the team added to a file: blocks of lines and list items.

    Each block is kept with where it went in the old release's file.
    """

    old: list[str]
    blocks: list[tuple[int, list[str]]] = field(default_factory=list)
    list_items: dict[str, list[str]] = field(default_factory=dict)


def needing_a_person() -> set[str]:
    rejected = [path.removesuffix(".rej") for path in rejected_hunks()]
    return {*files_with_conflict_markers(), *unmerged_paths(), *rejected}


def team_owned(path: str, package: str) -> bool:
    ownership = load_ownership()
    if any(section.path == path for section in ownership.team_sections):
        return True
    return ownership.owners_of(path, package) == ["team"]


def list_items(line: str) -> tuple[str, list[str]] | None:
    """The name and the items of a one-line list assignment such as `__all__ = ["A", "B"]`."""
    match = LIST_ASSIGNMENT.match(line.strip())
    if match is None:
        return None
    try:
        items = ast.literal_eval(f"[{match['items']}]")
    except (SyntaxError, ValueError):
        return None
    if not all(isinstance(item, str) for item in items):
        return None
    return match["name"], items


def team_change(old: list[str], team: list[str]) -> TeamChange:
    change = TeamChange(old)
    matcher = difflib.SequenceMatcher(None, old, team, autojunk=False)
    for operation, old_start, old_end, team_start, team_end in matcher.get_opcodes():
        if operation == "equal":
            continue
        if operation == "insert":
            change.blocks.append((old_start, team[team_start:team_end]))
            continue
        if operation == "replace" and old_end - old_start == 1 and team_end - team_start == 1:
            before, after = list_items(old[old_start]), list_items(team[team_start])
            if before and after and before[0] == after[0] and set(before[1]) <= set(after[1]):
                added = [item for item in after[1] if item not in before[1]]
                change.list_items.setdefault(after[0], []).extend(added)
                continue
        raise CannotReapply(f"the team changed or removed lines ({operation})")
    return change


def is_import(line: str) -> bool:
    return line.startswith(("from ", "import "))


def import_key(line: str) -> tuple[bool, str]:
    """Sort key within the imports: absolute before relative, then by module."""
    module = line.split()[1]
    return module.startswith("."), module.lower()


def add_import(lines: list[str], new: str) -> None:
    if new in lines:
        return
    imports = [index for index, line in enumerate(lines) if is_import(line)]
    if not imports:
        raise CannotReapply("the new file has no imports to add to")
    same_kind = [i for i in imports if import_key(lines[i])[0] == import_key(new)[0]] or imports
    later = [i for i in same_kind if import_key(lines[i]) > import_key(new)]
    lines.insert(later[0] if later else same_kind[-1] + 1, new)


def extension_point(lines: list[str]) -> int:
    """The line after the last "... here" comment block: where the team's lines go."""
    marked = [index for index, line in enumerate(lines) if EXTENSION_POINT.match(line)]
    if not marked:
        raise CannotReapply("its anchor is gone and the new file has no extension point")
    index = marked[-1] + 1
    while index < len(lines) and lines[index].lstrip().startswith("#"):
        index += 1
    return index


def placement(new: list[str], old: list[str], at: int) -> int:
    """Where lines the team put at `old[at]` go in the new file.

    At the end if that is where they were (a team section ends the file);
    else before the nearest line that is not blank they preceded, or after
    the one they followed (with as many blank lines between as there were);
    else at the file's extension point.
    """
    if at == len(old):
        return len(new)
    after = next((i for i in range(at, len(old)) if old[i].strip()), None)
    if after is not None and old[after] in new:
        position = new.index(old[after])
        while after > at and position > 0 and not new[position - 1].strip():
            after, position = after - 1, position - 1
        return position
    before = next((i for i in range(at - 1, -1, -1) if old[i].strip()), None)
    if before is not None and old[before] in new:
        position = new.index(old[before]) + 1
        while before + 1 < at and position < len(new) and not new[position].strip():
            before, position = before + 1, position + 1
        return position
    if after is None:  # only blank lines followed
        return len(new)
    return extension_point(new)


def reapply(change: TeamChange, new: list[str], python: bool, renames: dict[str, str]) -> list[str]:
    result = list(new)
    for at, block in change.blocks:
        if python:
            for line in (line for line in block if is_import(line)):
                add_import(result, line)
            block = [line for line in block if not is_import(line)]
        for old_name, new_name in renames.items():
            block = [line.replace(old_name, new_name) for line in block]
        if block:
            position = placement(result, change.old, at)
            result[position:position] = block
    for name, added in change.list_items.items():
        widen_list(result, name, added)
    return result


def widen_list(lines: list[str], name: str, added: list[str]) -> None:
    """Add `added` to the one-line list assigned to `name`, keeping it sorted."""
    for index, line in enumerate(lines):
        found = list_items(line)
        if found is not None and found[0] == name:
            items = sorted({*found[1], *added})
            lines[index] = line[: line.index("[")] + "[" + ", ".join(f'"{i}"' for i in items) + "]"
            return
    raise CannotReapply(f"the new file has no `{name}` list")


def tail_moved(path: str) -> bool:
    """Whether the merge left what ended `path` before the update somewhere other than its end.

    A team's lines at the end of a file with a team section belong after the
    section's heading; Git places them after the lines they followed.
    """
    before, now = committed(path), Path(path)
    if before is None or not now.is_file():
        return False
    last = before.decode().rstrip().splitlines()[-1:]
    lines = now.read_text().rstrip().splitlines()
    return bool(last) and last[0] in lines and lines[-1] != last[0]


def resolve(
    path: str, old_release: Path, new_release: Path, renames: dict[str, str], merged: bool
) -> bool:
    """Rebuild `path` from the new release and the team's additions; whether it did.

    A file Copier `merged` without a conflict is rebuilt only when the team's
    change is lines appended at its end.
    """
    team_bytes = committed(path)
    old_file, new_file = old_release / path, new_release / path
    if team_bytes is None or not old_file.is_file() or not new_file.is_file():
        return False
    old = old_file.read_text().splitlines()
    team = team_bytes.decode().splitlines()
    try:
        change = team_change(old, team)
        appended = [at for at, _ in change.blocks] == [len(old)] and not change.list_items
        if merged and not appended:
            return False
        lines = reapply(change, new_file.read_text().splitlines(), path.endswith(".py"), renames)
    except CannotReapply as reason:
        print(f"template-edits: {path}: left for you to merge: {reason}")
        return False
    Path(path).write_text("\n".join(lines) + "\n")
    Path(f"{path}.rej").unlink(missing_ok=True)
    git("reset", "--quiet", "--", path)  # drop the conflict's stages from the index
    print(f"template-edits: {path}: your additions are carried onto the new release's file")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rename", action="append", default=[], metavar="OLD=NEW", help="a renamed call"
    )
    arguments = parser.parse_args(argv)
    renames = dict(rename.split("=", 1) for rename in arguments.rename)
    answers = yaml.safe_load(Path(ANSWERS_FILE).read_text())
    package = answers["package_name"]
    conflicted = {path for path in needing_a_person() if team_owned(path, package)}
    sections = {section.path for section in load_ownership().team_sections}
    misplaced = {path for path in sections - conflicted if tail_moved(path)}
    old_answers = committed(ANSWERS_FILE)
    if not (conflicted or misplaced) or old_answers is None:
        return 0
    old_release = rendering(old_answers.decode())
    new_release = rendering(Path(ANSWERS_FILE).read_text())
    for path in sorted(conflicted | misplaced):
        resolve(path, old_release, new_release, renames, merged=path in misplaced)
    # The update succeeded; what is left is in the update report.
    return 0


if __name__ == "__main__":
    sys.exit(main())
