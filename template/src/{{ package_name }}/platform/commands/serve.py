"""`serve`: run the HTTP server."""

import argparse
import sys

from ...settings import Settings
from ..cli import command


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (default: the HOST setting)")
    parser.add_argument("--port", type=int, help="port to bind (default: the PORT setting)")


@command("serve", "run the HTTP server", arguments)
def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    from ...app import create_app
    from ..server import serve
    from ..wiring import configuration_problem

    problem = configuration_problem(settings)
    if problem is not None:
        print(f"refusing to start: {problem}", file=sys.stderr)
        return 2
    serve(create_app(settings), settings, args.host or settings.host, args.port or settings.port)
    return 0
