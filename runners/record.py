"""`python -m runners.record`: print the JSON Schema of the current run record version (runners.store.schema), for
tools outside this lab."""
import json

from runners.store.schema import json_schema

if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
