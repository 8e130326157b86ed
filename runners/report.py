"""`python -m runners.report`: regenerate the comparison tables from the run records alone."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runners.analysis.comparison import write_tables
from runners.core.errors import UserError
from runners.store.records import DEFAULT_RESULTS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners.report", description=__doc__)
    p.add_argument("--results", default=DEFAULT_RESULTS,
                   help=f"folder holding <dataset>/runs/*.json (default {DEFAULT_RESULTS}/; the committed showcase "
                        f"is results/)")
    p.add_argument("--dataset", help="the dataset folder to rebuild (default: every one that has runs/)")
    p.add_argument("--target-accuracy", type=float,
                   help="validation accuracy for the budget-to-reach column (default: 95%% of the best final)")
    p.add_argument("--html", action="store_true",
                   help="also write <results>/<dataset>/index.html: one page with the tables, plots and every run's "
                        "details, that opens from disk (runners.compare writes it always)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = Path(args.results)
    datasets = [args.dataset] if args.dataset else sorted(d.parent.name for d in results.glob("*/runs") if d.is_dir())
    try:
        if not datasets:
            raise UserError(f"no records under {results}: run `python -m runners.compare` first")
        for dataset in datasets:
            rendered = write_tables(results, dataset, args.target_accuracy, page=args.html)
            for eid, text in rendered.items():  # an experiment's section, or one across budgets (titled already)
                print(text if eid.startswith("budgets-") else f"## Experiment {eid}\n\n{text}")
            print(f"Tables: {results / dataset}/comparison.md, comparison.csv"
                  + (f"; page: {results / dataset}/index.html" if args.html else "") + "\n")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
