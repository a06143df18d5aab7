"""Benchmarks of the template and the services it renders; see benchmarks/README.md.

They reuse the template's test helpers (tests/matrix.py, tests/releases.py,
tests/suite.py), which import each other as top-level modules, as pytest runs
them: tests/ goes on the import path here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
