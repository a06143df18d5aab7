"""Benchmarks of the template and the services it renders; see benchmarks/README.md.

They reuse the template's test helpers (tests/matrix.py, tests/releases.py,
tests/suite.py), which import each other as top-level modules, as pytest runs
them: tests/ goes on the import path here, and scripts/ for the release
records tests/releases.py reads, as the tests' configuration does. Like the tests, they render the
working tree, uncommitted changes included, so Copier's warning about a
dirty template is silenced here as it is in the tests' configuration.
"""

import sys
import warnings
from pathlib import Path

from copier.errors import DirtyLocalWarning

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]
warnings.filterwarnings("ignore", category=DirtyLocalWarning)
