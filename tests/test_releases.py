"""Releases: the changelog, releases.toml and the Git tags agree, and a release can be cut."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from matrix import TEMPLATE_ROOT
from releases import commit, git, releases

RELEASE_SCRIPT = TEMPLATE_ROOT / "scripts" / "release.py"
# Who the release commit is by, whatever Git identity the machine has.
COMMITTER = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}


def release(repository: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE_SCRIPT), "--repository", str(repository), *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **COMMITTER},
    )


def test_every_recorded_release_agrees_with_the_changelog_and_its_tag() -> None:
    checked = release(TEMPLATE_ROOT, "check")
    assert checked.returncode == 0, checked.stderr
    for recorded in releases():
        if git(TEMPLATE_ROOT, "tag", "--list", recorded.tag):
            tagged = git(TEMPLATE_ROOT, "rev-list", "-n", "1", recorded.tag).strip()
            assert tagged == recorded.commit, f"{recorded.tag} is on {tagged}"


def clone(tmp_path: Path) -> Path:
    repository = tmp_path / "template"
    git(TEMPLATE_ROOT, "clone", "--quiet", str(TEMPLATE_ROOT), str(repository))
    for recorded in releases():
        if not git(repository, "tag", "--list", recorded.tag):
            git(repository, "tag", recorded.tag, recorded.commit)
    return repository


def add_changelog_entry(repository: Path, version: str) -> None:
    changelog = repository / "CHANGELOG.md"
    text = changelog.read_text()
    first_entry = text.index("\n## ")
    entry = f"\n## {version} - 2026-12-31\n\n- A fix.\n"
    changelog.write_text(text[:first_entry] + entry + text[first_entry:])
    git(repository, "add", "-A")
    commit(repository, f"Describe {version}")


def test_cut_tags_head_and_records_it(tmp_path: Path) -> None:
    repository = clone(tmp_path)
    add_changelog_entry(repository, "99.0.0")
    head = git(repository, "rev-parse", "HEAD").strip()

    cut = release(repository, "cut", "99.0.0")

    assert cut.returncode == 0, cut.stderr
    assert git(repository, "rev-list", "-n", "1", "v99.0.0").strip() == head
    assert f'version = "99.0.0"\ncommit = "{head}"' in (repository / "releases.toml").read_text()
    assert not git(repository, "status", "--porcelain"), "the record is committed"
    assert release(repository, "check").returncode == 0


def test_cut_refuses_what_would_make_the_records_disagree(tmp_path: Path) -> None:
    repository = clone(tmp_path)
    newest = releases()[-1].version

    undescribed = release(repository, "cut", "99.0.0")
    assert undescribed.returncode == 1
    assert "must start with the entry for 99.0.0" in undescribed.stderr

    add_changelog_entry(repository, newest)
    older = release(repository, "cut", newest)
    assert older.returncode == 1
    assert "is not newer than the last release" in older.stderr

    (repository / "README.md").write_text("edited\n")
    dirty = release(repository, "cut", "99.0.0")
    assert dirty.returncode == 1
    assert "uncommitted changes" in dirty.stderr


def test_check_reports_a_tag_on_another_commit(tmp_path: Path) -> None:
    repository = clone(tmp_path)
    first = releases()[0]
    git(repository, "tag", "--force", first.tag, "HEAD")

    checked = release(repository, "check")

    assert checked.returncode == 1
    assert f"tag {first.tag} points at" in checked.stderr
