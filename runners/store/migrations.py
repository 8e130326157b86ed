"""Every earlier record version turned into the current one, one step a version, each step saying what changed."""
from __future__ import annotations

from runners.store.schema import SCHEMA_VERSION, RecordError


def migrate(data: dict) -> dict:
    """Apply each migration from the record's version up to the current one."""
    version = data.get("schema")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise RecordError(f"unknown schema version {version!r} (this lab reads 1..{SCHEMA_VERSION})")
    for step in MIGRATIONS[version - 1:]:
        data = step(data)
    return data


def _v1_to_v2(data: dict) -> dict:
    """Version 1 had two shapes (before and after `ablate`, `compile` and `compile_seconds` appeared), bare NaN for
    unread losses, and statuses as free strings. Version 2 is one shape with every field present."""
    data = {**data, "schema": 2}
    config = data.get("config")
    if isinstance(config, dict):
        data["config"] = {"ablate": [], "compile": False, **config}
    if isinstance(data.get("measurements"), dict):
        data["measurements"] = {"compile_seconds": 0.0, **data["measurements"]}
    return data


def _v2_to_v3(data: dict) -> dict:
    """Version 3 added the learning-rate search's settings to the config (`tune_lr`, `search_seeds`, `select_on`,
    `lr_range`, `search`); a version-2 run had none, which their defaults say."""
    return {**data, "schema": 3}


def _v3_to_v4(data: dict) -> dict:
    """Version 4 added what a run costs to keep and serve (`serving`) and to train (`cost`), which a version-3 run
    did not measure (their absence says so), and the loop's revision (`config.loop`): a version-3 run trained in
    revision 1 (fp32 on the CPU, gelu_new)."""
    data = {**data, "schema": 4}
    if isinstance(data.get("config"), dict):
        data["config"] = {**data["config"], "loop": data["config"].get("loop", 1)}
    return data


def _v4_to_v5(data: dict) -> dict:
    """Version 5 added the learning-rate range a tuned run's search searched (`method.lr_range`, with its source),
    which a version-4 run did not record (its absence says so; the tables then read the declared range)."""
    return {**data, "schema": 5}


def _v5_to_v6(data: dict) -> dict:
    """Version 6 added the modules a method resolved on the model's architecture (`method.modules`), the model as a
    run loaded it (`loaded`) and the `refused` status; a version-5 run was GPT-2's, with the modules its method's
    spec named (in `method.params`), and recorded neither."""
    return {**data, "schema": 6}


MIGRATIONS = [_v1_to_v2, _v2_to_v3, _v3_to_v4, _v4_to_v5, _v5_to_v6]  # MIGRATIONS[k] turns version k + 1 into k + 2
