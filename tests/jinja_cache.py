"""Each Jinja template source compiled once per test process.

Copier builds a new Jinja environment for every render, so a test process
that renders many variants, and updates that render two releases each,
compile the same template files again and again: about a quarter of a
render's time and of an update's. Jinja's own bytecode cache serves only
templates loaded by name, not the path and answer expressions Copier
compiles from strings, and it lives on one environment.

`compile_once` keeps what `Environment.compile` returns, keyed by the source
and by everything in the environment that compiling reads (its syntax
settings, extensions, and the names of its filters and tests), so a
template compiles to the code a new environment would give it. Rendering,
and with it every file a test reads, is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jinja2

Compile = Callable[..., Any]


def compiling_settings(environment: jinja2.Environment) -> tuple[object, ...]:
    """What in `environment` the code compiled from a source depends on."""
    return (
        type(environment),
        environment.block_start_string,
        environment.block_end_string,
        environment.variable_start_string,
        environment.variable_end_string,
        environment.comment_start_string,
        environment.comment_end_string,
        environment.line_statement_prefix,
        environment.line_comment_prefix,
        environment.trim_blocks,
        environment.lstrip_blocks,
        environment.newline_sequence,
        environment.keep_trailing_newline,
        environment.optimized,
        environment.is_async,
        environment.autoescape if isinstance(environment.autoescape, bool) else id(environment),
        environment.finalize is None,
        tuple(sorted(environment.extensions)),
        frozenset(environment.filters),
        frozenset(environment.tests),
    )


def compile_once(compile_source: Compile) -> Compile:
    """`Environment.compile`, returning what it returned before for the same input."""
    compiled: dict[tuple[object, ...], Any] = {}

    @functools.wraps(compile_source)
    def compile_template(
        environment: jinja2.Environment,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if not isinstance(source, str):  # an already parsed template: compiled as it comes
            return compile_source(environment, source, name, filename, raw, defer_init)
        key = (compiling_settings(environment), source, name, filename, raw, defer_init)
        if key not in compiled:
            compiled[key] = compile_source(environment, source, name, filename, raw, defer_init)
        return compiled[key]

    return compile_template
