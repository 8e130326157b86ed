"""The README's promises that can be checked: its example method is the real file, its tables are current."""
from __future__ import annotations

from pathlib import Path

from runners.compare import list_methods

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_add_a_method_example_is_the_real_file():
    source = (ROOT / "methods" / "bitfit.py").read_text()
    assert f"```python\n{source}```" in README


def test_method_table_is_the_registry():
    assert list_methods(markdown=True) in README
