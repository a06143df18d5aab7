"""The pinned dependency set, exposed to templates.

`dependencies.toml` beside this file is the one place versions live. Templates
ask for a pin by name, so a version never appears in a rendered file by hand:

    {{ pin("fastapi") }}           -> fastapi==0.165.0
    {{ version("ruff") }}          -> 0.17.6
    {{ image("python") }}          -> python:3.11-slim-bookworm
    {{ action("actions/checkout") }} -> actions/checkout@<commit> # v5.1.0
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

BOM_FILE = Path(__file__).with_name("dependencies.toml")
EXTRAS = re.compile(r"\[.*\]$")


@cache
def load_bom() -> dict[str, dict[str, str]]:
    with BOM_FILE.open("rb") as file:
        return tomllib.load(file)


def _find(name: str) -> tuple[str, str]:
    """The BOM key (with extras) and pinned version of a Python package."""
    bom = load_bom()
    packages = {
        **bom["runtime"],
        **bom["dev"],
        **bom["build"],
        **bom["tools"],
        **bom["hooks"],
    }
    for key, pinned in packages.items():
        if name in (key, EXTRAS.sub("", key)):
            return key, pinned
    raise KeyError(f"{name} is not in extensions/dependencies.toml")


def version(name: str) -> str:
    """The pinned version of a Python package, named with or without extras."""
    return _find(name)[1]


def pin(name: str) -> str:
    """A requirement string that pins the package (and its extras) exactly."""
    key, pinned = _find(name)
    return f"{key}=={pinned}"


def image(name: str) -> str:
    return load_bom()["images"][name]


def action(name: str) -> str:
    return f"{name}@{load_bom()['ci'][name]}"


class PinnedDependencies(Extension):
    """Adds pin(), version(), image() and action() to the template globals."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals.update(pin=pin, version=version, image=image, action=action)
