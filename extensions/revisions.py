"""Keep a team's migrations whole when a release moves a template revision off their chain.

Up to 0.3.0 the template's outbox revision, `0002`, sat in the service's own
chain, after the jobs revision `0001` when there was one; a team revision
written after it names `"0002"` as its `down_revision`. From 0.4.0 the
template's tables have their own Alembic branch, and `0002` is gone from the
service's chain. Copier runs this script in the service during such an
update:

    revisions.py VERSIONS_DIR MOVED

Every revision in VERSIONS_DIR (the service's chain) that follows MOVED is
made to follow what MOVED followed there: `0001` when the service has that
revision, else nothing (the chain's base). The database needs nothing from
this: `migrate` recognises where an old database stands.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

# The revision the moved one followed in the old chain, if the service has it.
OLD_PARENT = "0001"


def assigned_revisions(script: str) -> dict[str, object]:
    """The module-level `revision` and `down_revision` a migration script assigns."""
    values: dict[str, object] = {}
    for node in ast.parse(script).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    values[target.id] = ast.literal_eval(node.value)
    return values


def followed(down_revision: object, moved: str, parent: str | None) -> object:
    """`down_revision` with `moved` replaced by `parent` (or dropped when there is none)."""
    if down_revision == moved:
        return parent
    if isinstance(down_revision, tuple | list):
        kept = [parent if name == moved else name for name in down_revision]
        kept = [name for name in dict.fromkeys(kept) if name is not None]
        return tuple(kept) if len(kept) > 1 else (kept[0] if kept else None)
    return down_revision


def rewrite(path: Path, moved: str, parent: str | None) -> bool:
    """Make the script at `path` follow `parent` instead of `moved`; whether it changed."""
    text = path.read_text()
    down_revision = assigned_revisions(text).get("down_revision")
    new = followed(down_revision, moved, parent)
    if new == down_revision:
        return False
    assignment = re.compile(r"^(down_revision\b[^=]*=\s*).*$", re.MULTILINE)
    text = assignment.sub(lambda match: match.group(1) + repr(new).replace("'", '"'), text, 1)
    revises = ", ".join(new) if isinstance(new, tuple) else (new or "")
    text = re.sub(r"^Revises:.*$", f"Revises: {revises}".rstrip(), text, count=1, flags=re.M)
    path.write_text(text)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", type=Path, help="the service's versions directory")
    parser.add_argument("moved", help="the revision that left the service's chain")
    args = parser.parse_args(argv)
    versions: Path = args.versions
    if not versions.is_dir():
        return 0
    scripts = sorted(versions.glob("*.py"))
    revisions = {assigned_revisions(path.read_text()).get("revision") for path in scripts}
    parent = OLD_PARENT if OLD_PARENT in revisions else None
    for path in scripts:
        if rewrite(path, args.moved, parent):
            print(f"{path}: now follows {parent or 'the base of the chain'}, not {args.moved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
