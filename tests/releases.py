"""Template releases, and a scratch Git repository of the template with their tags.

`copier update` moves a service between tags, so the update tests need a
repository where every release in releases.toml is tagged, and whose HEAD is
the template as it is in this working tree.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from matrix import TEMPLATE_ROOT, Variant
from release import Release, recorded_releases

# What a service is rendered from: a change here is a change of the template.
TEMPLATE_PATHS = ("copier.yml", "template", "extensions")


@cache
def releases() -> tuple[Release, ...]:
    return tuple(recorded_releases(TEMPLATE_ROOT))


@cache
def latest_changed_release() -> Release:
    """The newest release whose template differs from this working tree's.

    Once the working tree is cut as a release, updating from that release
    changes nothing; the update worth checking in full is from the one before.
    """
    for release in reversed(releases()):
        unchanged = subprocess.run(
            ["git", "diff", "--quiet", release.commit, "--", *TEMPLATE_PATHS],
            cwd=TEMPLATE_ROOT,
            check=False,
        )
        if unchanged.returncode:
            return release
    return releases()[-1]


def git(repository: Path, *arguments: str) -> str:
    completed = subprocess.run(
        ["git", *arguments], cwd=repository, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, f"git {' '.join(arguments)}: {completed.stderr}"
    return completed.stdout


@cache
def questions_at(commit: str) -> dict[str, Any]:
    """The questions copier.yml asked at a commit of this repository."""
    config = yaml.safe_load(git(TEMPLATE_ROOT, "show", f"{commit}:copier.yml"))
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def offered_at(release: Release, variant: Variant) -> bool:
    """Whether the release offered every answer of the variant."""
    asked = questions_at(release.commit)
    for name, value in variant.answers:
        choices = asked.get(name, {}).get("choices")
        if choices is not None:
            values = choices.values() if isinstance(choices, dict) else choices
            if value not in values:
                return False
    return True


def working_tree_files(root: Path) -> list[str]:
    listed = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def build_template_repository(destination: Path) -> Path:
    """A clone with every release tagged and this working tree as its HEAD commit.

    Tags that exist already must point at the recorded commits; the release
    tests check that.
    """
    git(TEMPLATE_ROOT.parent, "clone", "--quiet", str(TEMPLATE_ROOT), str(destination))
    for release in releases():
        # A clone brings the tags this repository has; make the ones it lacks.
        if not git(destination, "tag", "--list", release.tag):
            git(destination, "tag", release.tag, release.commit)
    for name in working_tree_files(destination):
        (destination / name).unlink()
    for name in working_tree_files(TEMPLATE_ROOT):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_ROOT / name, target)
    git(destination, "add", "-A")
    if git(destination, "status", "--porcelain"):
        commit(destination, "The working tree under test")
    return destination


def commit_new_repository(root: Path, message: str) -> None:
    """Make `root` a Git repository whose first commit holds its files, as a team would."""
    git(root, "init", "--quiet")
    git(root, "add", "-A")
    commit(root, message)


def commit(repository: Path, message: str) -> None:
    git(
        repository,
        "-c",
        "user.name=Template Tests",
        "-c",
        "user.email=tests@example.invalid",
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        message,
    )
