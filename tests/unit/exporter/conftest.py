"""Runs only in the child pytest of tests/unit/test_exporter_isolated.py (Locust is imported here)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: `import support`
