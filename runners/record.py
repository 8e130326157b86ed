"""`python -m runners.record`: print the JSON Schema of the current run record version (runners.store.schema), for
tools outside this lab."""
import argparse
import json

from runners.store.schema import json_schema


def build_parser() -> argparse.ArgumentParser:
    """No options: the parser gives `--help` and refuses a stray argument."""
    return argparse.ArgumentParser(prog="python -m runners.record", description=__doc__)


if __name__ == "__main__":
    build_parser().parse_args()
    print(json.dumps(json_schema(), indent=2))
