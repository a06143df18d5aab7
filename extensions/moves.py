"""Carry a team's edits across a template release that moves or removes a file.

`copier update` deletes every file the old release rendered and the new one
does not, with whatever the team changed in it. A release that moves or
removes such a file declares it in copier.yml `_migrations`; Copier runs
this script for that entry after its own merge, in the service:

    moves.py FROM [TO]
    moves.py FROM TO [FROM TO ...]      (TO '-': removed)

The team's copy of FROM is still in Git (Copier updates only a clean
checkout), and the old release's own rendering of it is rendered again from
the old answers. The team's change (old rendering -> team's copy) is merged
into TO with a 3-way merge; with no TO (or none rendered for this service),
the team's edited FROM is put back and the script says so. A file the team
did not change needs nothing: the new release's file stands. Where both
sides changed the same lines the merge leaves Git's conflict markers, never
a silent loss.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ANSWERS_FILE = ".copier-answers.yml"
# Markers read like Copier's own: the service's side first, the template's last.
OURS_LABEL = "before updating"
BASE_LABEL = "last update"
THEIRS_LABEL = "after updating"


def git_path(name: str) -> Path:
    """A path inside this checkout's Git directory, where no commit picks it up."""
    completed = subprocess.run(
        ["git", "rev-parse", "--git-path", name], capture_output=True, text=True, check=True
    )
    return Path(completed.stdout.strip()).resolve()


def store() -> Path:
    """Where the old release's rendering is kept, shared by the entries of one update."""
    return git_path("template-moves")


def rendering(answers_text: str) -> Path:
    """The release an answers file names, rendered with its answers; once per update.

    The update report removes these renderings when the update is over.
    """
    # Imported here: most updates never render a release, and Copier takes
    # longer to import than every other step of a migration task.
    from copier import run_copy

    key = hashlib.sha256(answers_text.encode()).hexdigest()[:16]
    target = store() / f"release-{key}"
    if target.is_dir():
        return target
    answers: dict[str, Any] = yaml.safe_load(answers_text)
    data = {name: value for name, value in answers.items() if not name.startswith("_")}
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        rendering = Path(scratch) / "rendering"
        run_copy(
            answers["_src_path"],
            str(rendering),
            data=data,
            vcs_ref=answers["_commit"],
            defaults=True,
            quiet=True,
            unsafe=True,
            skip_tasks=True,
        )
        rendering.rename(target)
    return target


def committed(path: str) -> bytes | None:
    """A file as the service's last commit has it: the state before the update."""
    completed = subprocess.run(["git", "show", f"HEAD:./{path}"], capture_output=True, check=False)
    return completed.stdout if completed.returncode == 0 else None


def carry(source: str, destination: str | None) -> bool:
    """Carry the team's edits of `source`; True when the merge left conflicts."""
    team = committed(source)
    old_answers = committed(ANSWERS_FILE)
    if team is None or old_answers is None:
        return False  # This service never had the file, or the team removed it.
    base = rendering(old_answers.decode()) / source
    if not base.is_file() or base.read_bytes() == team:
        return False  # Not the old release's file, or not edited: the new file stands.
    # With --conflict=rej Copier leaves the team's rejected diff beside the old path.
    Path(f"{source}.rej").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        team_copy = Path(scratch) / "team"
        team_copy.write_bytes(team)
        if destination is None or not Path(destination).is_file():
            return keep_removed_file(source, team_copy)
        return merge_into(destination, source, team_copy, base)


def keep_removed_file(source: str, team_copy: Path) -> bool:
    kept = Path(source)
    if kept.exists():
        # This service's answers still render it: Copier has merged the edits.
        return False
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(team_copy, kept)
    print(
        f"template-moves: KEPT {source}: this release no longer has it, and your "
        "edits to it are kept. Move what you still need where it belongs, then delete it."
    )
    return False


def merge_into(destination: str, source: str, team_copy: Path, base_copy: Path) -> bool:
    completed = subprocess.run(
        [
            "git",
            "merge-file",
            "-p",
            "-L",
            f"{OURS_LABEL} ({source})",
            "-L",
            BASE_LABEL,
            "-L",
            THEIRS_LABEL,
            str(team_copy),
            str(base_copy),
            destination,
        ],
        capture_output=True,
        check=False,
    )
    # merge-file exits with the number of conflicts (at most 127); above that it failed.
    if completed.returncode > 127:
        error = completed.stderr.decode(errors="replace")
        sys.exit(f"template-moves: merging {source} into {destination} failed: {error}")
    Path(destination).write_bytes(completed.stdout)
    if completed.returncode:
        print(
            f"template-moves: CONFLICT {destination}: this release moved {source} here; "
            f"your edits to it conflict with the release's in {completed.returncode} "
            "place(s). Resolve the <<<<<<< markers."
        )
        return True
    print(f"template-moves: moved {source} -> {destination}, with your edits carried.")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="FROM [TO]",
        help="an old path alone (removed), or pairs of old and new paths; '-' as TO: removed",
    )
    paths: list[str] = parser.parse_args(argv).paths
    if len(paths) > 1 and len(paths) % 2:
        parser.error("give FROM alone, or FROM TO pairs")
    pairs = zip(paths[::2], paths[1::2], strict=True) if len(paths) > 1 else [(paths[0], "-")]
    for source, destination in pairs:
        carry(source, None if destination == "-" else destination)
    # The update itself succeeded; a conflict is reported, for the person to resolve.
    return 0


if __name__ == "__main__":
    sys.exit(main())
