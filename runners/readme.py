"""`python -m runners.readme`: rewrite README.md's methods table from the registry (a test holds the two equal)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runners.compare import list_methods
from runners.core.files import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
HEADING = "## Methods"


def with_table(text: str, table: str) -> str:
    """`text` with the first markdown table under the Methods heading replaced by `table`."""
    lines = text.split("\n")
    if HEADING not in lines:
        raise ValueError(f"no line {HEADING!r} in the README")
    start = next(i for i in range(lines.index(HEADING), len(lines)) if lines[i].startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join([*lines[:start], table, *lines[end:]])


def build_parser() -> argparse.ArgumentParser:
    """No options: the parser gives `--help` and refuses a stray argument."""
    return argparse.ArgumentParser(prog="python -m runners.readme", description=__doc__)


def main(path: Path = README) -> int:
    text = path.read_text()
    updated = with_table(text, list_methods(markdown=True))
    if updated == text:
        print(f"{path.name}: the methods table is current")
    else:
        path.write_text(updated)
        print(f"{path.name}: methods table rewritten from the registry; review it with `git diff {path.name}`")
    return 0


if __name__ == "__main__":
    build_parser().parse_args()
    sys.exit(main())
