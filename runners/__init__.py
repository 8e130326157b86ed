"""The lab's runner: data, the one training loop, records, tables and the command-line entry points."""
