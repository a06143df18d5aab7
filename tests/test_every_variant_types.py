"""`mypy --strict` on every code variant, in an environment installed from its own lock.

The variants' full suites (tests/test_variant_suites.py) type-check the
variants they run, by default the pairwise covering set. That set holds every
pair of answers but not every triple, and a module one combination of three
answers renders can use a setting that only another combination defines. So
every combination of the answers that shape the code is type-checked here, on
its shared render, except the variants whose suite runs in the same session;
ruff already checks each one (tests/test_render.py).

Variants that declare the same dependencies share one environment, installed
once per run by `uv sync` from a copy of the variant's pyproject.toml; mypy
reads the service's own package from its sources, so the environment does not
hold it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest
from matrix import Variant
from renders import held_alone, rendered_once, shared_directory
from suite import run_step

# The dependencies only: mypy reads the service itself from its sources.
SYNC_DEPENDENCIES = ["uv", "sync", "--quiet", "--no-install-project"]


def declared_dependencies(project: Path) -> bytes:
    """What `uv sync` installs for `project`, as it declares it, in a stable form."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    declared = {
        "requires-python": pyproject["project"]["requires-python"],
        "dependencies": pyproject["project"]["dependencies"],
        "dependency-groups": pyproject.get("dependency-groups", {}),
    }
    return json.dumps(declared, sort_keys=True).encode()


def shared_environment(factory: pytest.TempPathFactory, project: Path, label: str) -> Path:
    """An environment with `project`'s dependencies, installed by the first test to ask."""
    declared = declared_dependencies(project)
    root = shared_directory(factory, "environments")
    home = root / hashlib.sha256(declared).hexdigest()[:16]
    environment = home / ".venv"
    with held_alone(home.with_suffix(".lock")):
        if not (environment / "bin" / "mypy").exists():
            home.mkdir(exist_ok=True)
            shutil.copy(project / "pyproject.toml", home)
            run_step(
                home,
                label,
                "uv sync",
                SYNC_DEPENDENCIES,
                environment={"UV_PROJECT_ENVIRONMENT": str(environment)},
            )
    return environment


@pytest.mark.covered_by_suite
def test_variant_type_checks(tmp_path_factory: pytest.TempPathFactory, variant: Variant) -> None:
    project = rendered_once(tmp_path_factory, variant)
    environment = shared_environment(tmp_path_factory, project, variant.id)
    run_step(project, variant.id, "mypy --strict", [str(environment / "bin" / "mypy")])
