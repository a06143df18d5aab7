"""Each Jinja template source compiled once per test process.

Copier builds a new Jinja environment for every render, so a test process
that renders many variants, and updates that render two releases each,
compile the same template files again and again: about a quarter of a
render's time and of an update's. Jinja's own bytecode cache serves only
templates loaded by name, not the path and answer expressions Copier
compiles from strings, and it lives on one environment.

`CompiledTemplates` keeps what `Environment.compile` returns, keyed by the source
and by everything in the environment that compiling reads (its syntax
settings, extensions, and the names of its filters and tests), so a
template compiles to the code a new environment would give it. Rendering,
and with it every file a test reads, is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jinja2
import pytest

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


class CompiledTemplates:
    """Code compiled from template sources, reused while `in_use`.

    One instance keeps its code across its `in_use` blocks, so a benchmark can
    render with it and without it in turn.
    """

    def __init__(self) -> None:
        self._compiled: dict[tuple[object, ...], Any] = {}

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """While the block runs, `Environment.compile` compiles a source only once."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                jinja2.Environment, "compile", self._compiling(jinja2.Environment.compile)
            )
            yield

    def _compiling(self, compile_source: Compile) -> Compile:
        """`compile_source`, returning what it returned before for the same input."""

        @functools.wraps(compile_source)
        def compile_template(
            environment: jinja2.Environment,
            source: Any,
            name: str | None = None,
            filename: str | None = None,
            raw: bool = False,
            defer_init: bool = False,
        ) -> Any:
            arguments = (name, filename, raw, defer_init)
            if not isinstance(source, str):  # an already parsed template: compiled as it comes
                return compile_source(environment, source, *arguments)
            key = (compiling_settings(environment), source, *arguments)
            if key not in self._compiled:
                self._compiled[key] = compile_source(environment, source, *arguments)
            return self._compiled[key]

        return compile_template
