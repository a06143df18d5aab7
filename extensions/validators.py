"""Answer validators for copier.yml.

Each filter returns an empty string for a good answer and, for a bad one, a
message that says what is allowed. Copier shows the message and asks again
(or, non-interactively, refuses the answer before anything is written).
"""

from __future__ import annotations

import keyword
import pkgutil
import re
import sys
import sysconfig
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
PACKAGE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TEAM = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Long enough for a name, short enough for every line the name lands in.
MAX_NAME_LENGTH = 32
MAX_DESCRIPTION_LENGTH = 200

# Names that would shadow a module the service itself imports.
RESERVED_PACKAGE_NAMES = frozenset(
    {
        "aio_pika",
        "aiormq",
        "alembic",
        "app",
        "asyncpg",
        "cryptography",
        "fastapi",
        "httpx",
        "jsonschema",
        "jwt",
        "nats",
        "opentelemetry",
        "pamqp",
        "platform",
        "prometheus_client",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "redis",
        "sqlalchemy",
        "starlette",
        "structlog",
        "tests",
        "uvicorn",
    }
)


def service_name_error(value: Any) -> str:
    name = str(value)
    if not SERVICE_NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        return (
            f"'{name}' is not a valid service name: use kebab-case, lowercase letters "
            f"and digits in words joined by single hyphens, starting with a letter, "
            f"at most {MAX_NAME_LENGTH} characters (for example: orders-api)."
        )
    return ""


def description_error(value: Any) -> str:
    text = str(value)
    if not text.strip():
        return "The description must not be empty: one line saying what the service does."
    if "\n" in text or len(text) > MAX_DESCRIPTION_LENGTH:
        return f"The description must be one line of at most {MAX_DESCRIPTION_LENGTH} characters."
    if '"' in text or "\\" in text:
        return "The description must not contain double quotes or backslashes."
    return ""


def team_error(value: Any) -> str:
    team = str(value)
    if not TEAM.fullmatch(team) or len(team) > MAX_NAME_LENGTH:
        return (
            f"'{team}' is not a valid team: use a slug of lowercase letters, digits and "
            f"hyphens, at most {MAX_NAME_LENGTH} characters (for example: payments)."
        )
    return ""


@cache
def standard_library_modules() -> frozenset[str]:
    """Every top-level module the standard library installs.

    `sys.stdlib_module_names` leaves some out (`test`, for one, which
    `python -m test` would then run instead of the service), so the
    standard library's own folders are listed too.
    """
    folders = {Path(sysconfig.get_path(name)) for name in ("stdlib", "platstdlib")}
    folders |= {folder / "lib-dynload" for folder in folders}
    installed = {module.name for module in pkgutil.iter_modules(sorted(map(str, folders)))}
    return frozenset({*sys.stdlib_module_names, *sys.builtin_module_names, *installed})


def package_name_error(value: Any) -> str:
    name = str(value)
    if not PACKAGE_NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        return (
            f"'{name}' is not a valid package name: use lowercase letters, digits and "
            f"underscores, starting with a letter (for example: orders_api)."
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"'{name}' is a Python keyword; choose another package name."
    if name in standard_library_modules():
        return f"'{name}' is a standard-library module; choose a name that does not shadow it."
    if name in RESERVED_PACKAGE_NAMES:
        return f"'{name}' would shadow a module the service imports; choose another package name."
    return ""


def http_port_error(value: Any) -> str:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return f"'{value}' is not a port number: use a whole number from 1024 to 65535."
    if not 1024 <= port <= 65535:
        return (
            f"Port {port} is not allowed: use 1024 to 65535 "
            f"(ports below 1024 need root, and the service runs as a non-root user)."
        )
    return ""


def worker_error(worker: Any, database: str, broker: str, example_feature: Any) -> str:
    if not worker or broker != "none":
        return ""
    if database == "none":
        return (
            "A worker needs a database or a broker to take its work from: "
            "choose a database or a broker, or answer no."
        )
    if not example_feature:
        return (
            "Without a broker the worker runs the example feature's jobs from the "
            "database: answer yes to example_feature, or no to worker."
        )
    return ""


def example_feature_error(example_feature: Any, database: str) -> str:
    if example_feature and database == "none":
        return (
            "The example jobs feature stores jobs in a database: choose a database, or answer no."
        )
    return ""


class AnswerValidators(Extension):
    """Registers the validators as Jinja filters."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            {
                "service_name_error": service_name_error,
                "description_error": description_error,
                "team_error": team_error,
                "package_name_error": package_name_error,
                "http_port_error": http_port_error,
                "worker_error": worker_error,
                "example_feature_error": example_feature_error,
            }
        )
