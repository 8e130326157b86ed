"""`python -m runners.migrate`: rewrite every record under a results folder in the current schema version."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runners.core.files import write_text_atomic
from runners.store import records as store
from runners.store import schema as record


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.migrate", description=__doc__)
    p.add_argument("results", nargs="+", help="folders holding <dataset>/runs/*.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    changed = skipped = 0
    for folder in args.results:
        for path in sorted(Path(folder).glob("*/runs/*.json")):
            rec = store.read(path)  # migrated on reading; a file that is no record is named and left alone
            if rec is None:
                skipped += 1
                continue
            text = rec.to_json()
            if path.read_text() != text:
                write_text_atomic(path, text)
                changed += 1
    print(f"{changed} record(s) rewritten in schema version {record.SCHEMA_VERSION}, {skipped} skipped")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
