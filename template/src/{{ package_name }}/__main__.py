"""`python -m <package> <command>`: the commands live in `platform/cli.py`."""

import sys

from .platform.cli import main

if __name__ == "__main__":
    sys.exit(main())
