"""Releases: check that the changelog, releases.toml and the Git tags agree; cut a release.

    uv run python scripts/release.py check
    uv run python scripts/release.py cut 0.4.0

A release is three records of one fact: a `## <version> - <date>` entry in
CHANGELOG.md, a `[[release]]` entry in releases.toml naming the commit, and
the Git tag `v<version>` on that commit (what `copier copy --vcs-ref` and
`copier update` move between). `check` fails when they disagree. `cut`
tags HEAD, whose CHANGELOG.md must already have the version's entry at the
top, then records the commit in releases.toml and commits that record; push
the commit and the tag afterwards (`git push --follow-tags`).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
CHANGELOG = "CHANGELOG.md"
RELEASES = "releases.toml"
ENTRY_HEADING = re.compile(r"^## (?P<version>\d+\.\d+\.\d+) - \d{4}-\d{2}-\d{2}$", re.MULTILINE)
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class ReleaseError(Exception):
    """The release records disagree, or a release cannot be cut; the message says why."""


@dataclass(frozen=True)
class Release:
    version: str
    commit: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"


def git(repository: Path, *arguments: str) -> str:
    completed = subprocess.run(
        ["git", *arguments], cwd=repository, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise ReleaseError(f"git {' '.join(arguments)}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def recorded_releases(repository: Path) -> list[Release]:
    with (repository / RELEASES).open("rb") as file:
        return [Release(**entry) for entry in tomllib.load(file).get("release", [])]


def changelog_versions(repository: Path) -> list[str]:
    """The versions CHANGELOG.md has entries for, newest first."""
    return ENTRY_HEADING.findall((repository / CHANGELOG).read_text())


def tag_commit(repository: Path, tag: str) -> str | None:
    """The commit a tag points at, or None when the repository has no such tag."""
    if not git(repository, "tag", "--list", tag):
        return None
    return git(repository, "rev-list", "-n", "1", tag)


def problems(repository: Path, cutting: str | None = None) -> list[str]:
    """Every disagreement between CHANGELOG.md, releases.toml and the tags.

    The version being cut may have its changelog entry before its record.
    """
    found = []
    releases = recorded_releases(repository)
    recorded = [release.version for release in releases]
    if recorded != sorted(recorded, key=version_key):
        found.append(f"{RELEASES} lists releases out of order: {', '.join(recorded)}")
    described = changelog_versions(repository)
    for version in sorted(set(recorded) - set(described), key=version_key):
        found.append(f"{version} is in {RELEASES} but has no entry in {CHANGELOG}")
    for version in sorted(set(described) - set(recorded) - {cutting}, key=version_key):
        found.append(f"{version} has an entry in {CHANGELOG} but is not in {RELEASES}")
    for release in releases:
        try:
            commit = git(repository, "rev-parse", "--verify", f"{release.commit}^{{commit}}")
        except ReleaseError:
            found.append(f"{release.version}: commit {release.commit} is not in this repository")
            continue
        tagged = tag_commit(repository, release.tag)
        if tagged is not None and tagged != commit:
            found.append(f"tag {release.tag} points at {tagged}, not at {commit}")
    return found


def cut(repository: Path, version: str) -> Release:
    """Tag HEAD as `version` and record it in releases.toml, in a commit of its own."""
    if not VERSION.match(version):
        raise ReleaseError(f"{version!r} is not a version like 1.2.3")
    existing = problems(repository, cutting=version)
    if existing:
        raise ReleaseError("the release records disagree already:\n  " + "\n  ".join(existing))
    if git(repository, "status", "--porcelain"):
        raise ReleaseError("the working tree has uncommitted changes; commit or stash them first")
    releases = recorded_releases(repository)
    if releases and version_key(version) <= version_key(releases[-1].version):
        raise ReleaseError(f"{version} is not newer than the last release, {releases[-1].version}")
    described = changelog_versions(repository)
    if not described or described[0] != version:
        raise ReleaseError(
            f"{CHANGELOG} must start with the entry for {version}: '## {version} - YYYY-MM-DD'"
        )
    release = Release(version, git(repository, "rev-parse", "HEAD"))
    if tag_commit(repository, release.tag) is not None:
        raise ReleaseError(f"tag {release.tag} exists already")
    git(repository, "tag", "--annotate", release.tag, "--message", f"Release {version}")
    with (repository / RELEASES).open("a") as file:
        file.write(f'\n[[release]]\nversion = "{version}"\ncommit = "{release.commit}"\n')
    git(repository, "add", RELEASES)
    git(repository, "commit", "--quiet", "--message", f"Record release {version}")
    return release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/release.py", description=__doc__)
    parser.add_argument(
        "--repository", type=Path, default=REPOSITORY, help="the template repository (this one)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="check CHANGELOG.md, releases.toml and the tags agree")
    cut_parser = commands.add_parser("cut", help="tag HEAD as a release and record it")
    cut_parser.add_argument("version", help="the new version, e.g. 0.4.0")
    args = parser.parse_args(argv)
    repository: Path = args.repository
    try:
        if args.command == "cut":
            release = cut(repository, args.version)
            print(f"tagged {release.tag} at {release.commit} and recorded it in {RELEASES}")
            print("push both: git push --follow-tags")
            return 0
        found = problems(repository)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    for problem in found:
        print(f"release: {problem}", file=sys.stderr)
    if found:
        return 1
    print(f"{CHANGELOG}, {RELEASES} and the tags agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
