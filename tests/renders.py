"""Each variant rendered once per test run and shared by every test that reads it.

The render tests, the deploy checks and the variants' own suites all look at
the same renders, so Copier runs once per variant however many tests and
workers ask. The first to ask renders while the others wait on a lock. Tests
only read a shared render; a test that writes (a variant's own suite creates
its environment and caches) works on a copy from `private_copy`.

Many variants render some files byte for byte alike. A check whose result
depends only on its input files (`unless_passed`) runs once per distinct
content per run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from matrix import Variant, render


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """A directory every test worker of this run sees: the one holding their own."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_directory(factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory of `shared_root`, made by the first worker to ask."""
    directory = shared_root(factory) / name
    directory.mkdir(exist_ok=True)
    return directory


@contextmanager
def held_alone(lock_path: Path) -> Iterator[None]:
    """While the block runs, no other test worker holding `lock_path` runs its own."""
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def rendered_once(factory: pytest.TempPathFactory, variant: Variant) -> Path:
    """The variant rendered in a directory named by its id; read it, do not change it."""
    root = shared_directory(factory, "variants")
    service = root / variant.id
    with held_alone(root / f"{variant.id}.lock"):
        if not service.exists():
            # Rendered aside and moved in whole, so a failed render leaves nothing behind.
            partial = root / f"{variant.id}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            render(partial, variant.data)
            partial.rename(service)
    return service


def private_copy(factory: pytest.TempPathFactory, variant: Variant, destination: Path) -> Path:
    """A copy of the variant's shared render that the caller may change."""
    shutil.copytree(rendered_once(factory, variant), destination, symlinks=True)
    return destination


@contextmanager
def unless_passed(factory: pytest.TempPathFactory, check: str, *inputs: Path) -> Iterator[bool]:
    """Whether `check` still has to run on these files in this test run.

    False when files of the same names and bytes already passed it (in any
    worker); otherwise True, and the check, run in the `with` block, is
    recorded as passed if the block ends without an exception. Only for a
    check whose result depends on nothing but these files.
    """
    digest = hashlib.sha256()
    for path in inputs:
        for part in (path.name.encode(), path.read_bytes()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    passed = shared_directory(factory, "passed") / f"{check}-{digest.hexdigest()}"
    with held_alone(passed.with_suffix(".lock")):
        if passed.exists():
            yield False
            return
        yield True
        passed.touch()
