"""After `copier update`: what changed in the service, and what needs a person.

Copier exits 0 even when a merge conflicted, so this runs as the last
`_migrations` task of every update (after Copier's own merge and every other
migration) and runs the three checks docs/updating.md asks for: the files
changed, the files with conflict markers, and the rejected hunks and unmerged
paths. It always exits 0: the update happened; what is left is for the
person to resolve, and the report says so loudly.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from moves import store

CONFLICT_MARKERS = r"^(<<<<<<<|>>>>>>>)( |$)"


def git(*arguments: str) -> list[str]:
    completed = subprocess.run(["git", *arguments], capture_output=True, text=True, check=False)
    return [line for line in completed.stdout.splitlines() if line]


def changed_files() -> list[str]:
    return git("status", "--short")


def files_with_conflict_markers() -> list[str]:
    # --untracked: the update's new files are not tracked yet.
    return git("grep", "--untracked", "-l", "-I", "-E", CONFLICT_MARKERS)


def rejected_hunks() -> list[str]:
    # Without --exclude-standard, so a *.rej ignore rule cannot hide one.
    return git("ls-files", "--others", "--", "*.rej")


def unmerged_paths() -> list[str]:
    return git("diff", "--name-only", "--diff-filter=U")


def report() -> str:
    changed = changed_files()
    conflicted = sorted(set(files_with_conflict_markers()) | set(unmerged_paths()))
    rejected = rejected_hunks()
    lines = [f"Template update: {len(changed)} path(s) changed (git status --short):"]
    lines += [f"  {line}" for line in changed] or ["  nothing"]
    if not (conflicted or rejected):
        lines.append("No conflicts. Review with `git diff`, run the tests, then commit.")
        return "\n".join(lines)
    banner = "!" * 72
    lines += ["", banner, "CONFLICTS: the update needs you before you commit.", banner]
    if conflicted:
        lines.append(f"{len(conflicted)} file(s) with conflict markers (<<<<<<< ... >>>>>>>):")
        lines += [f"  {path}" for path in conflicted]
    if rejected:
        lines.append(f"{len(rejected)} rejected hunk file(s): apply each by hand, then delete it:")
        lines += [f"  {path}" for path in rejected]
    lines.append("Keep what each side meant, remove the markers, run the tests, then commit.")
    return "\n".join(lines)


def main() -> int:
    print(report(), flush=True)
    # The releases the migrations rendered to compare with are not needed any more.
    shutil.rmtree(store(), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
