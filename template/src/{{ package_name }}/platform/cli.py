"""The command line, `python -m <package> <command>`: a registry the commands join.

Each module in `platform/commands/` registers its commands with `@command`;
`main` imports them all, so a command exists exactly when its module does.
"""

import argparse
import asyncio
import importlib
import pkgutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from ..settings import Settings, get_settings

Handler = Callable[[Settings, argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    arguments: Arguments | None = None


COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, arguments: Arguments | None = None
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `name`; it returns the exit code."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, help, handler, arguments)
        return handler

    return register


def load_commands() -> None:
    from . import commands

    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{module.name}")


def build_parser() -> argparse.ArgumentParser:
    load_commands()
    package = __package__.rpartition(".")[0] if __package__ else "service"
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name in sorted(COMMANDS):
        registered = COMMANDS[name]
        subparser = subcommands.add_parser(name, help=registered.help)
        if registered.arguments is not None:
            registered.arguments(subparser)
        subparser.set_defaults(handler=registered.handler)
    return parser


def describe_settings_error(error: ValidationError) -> str:
    lines = ["invalid settings:"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]).upper()
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:
        print(describe_settings_error(error), file=sys.stderr)
        return 2
    exit_code: int = args.handler(settings, args)
    return exit_code


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: how worker processes learn to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    return stop
