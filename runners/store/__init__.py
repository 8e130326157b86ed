"""The run record: its typed, versioned schema, its migrations, and the files it lives in."""
