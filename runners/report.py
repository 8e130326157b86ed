"""`python -m runners.report`: regenerate the comparison tables from the run records alone."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runners.errors import UserError
from runners.tables import write_tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runners.report", description=__doc__)
    p.add_argument("--results", default="results", help="folder holding <dataset>/runs/*.json (default results/)")
    p.add_argument("--dataset", default="tweets")
    p.add_argument("--target-accuracy", type=float,
                   help="validation accuracy for the budget-to-reach column (default: 95%% of the best final)")
    args = p.parse_args(argv)
    try:
        rendered = write_tables(Path(args.results), args.dataset, args.target_accuracy)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for eid, text in rendered.items():
        print(f"## Experiment {eid}\n\n{text}")
    print(f"Tables: {Path(args.results) / args.dataset}/comparison.md, comparison.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
