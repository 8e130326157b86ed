"""Method specs that cannot work on the model's architecture, found before any run loads the model: each is said in
one line and recorded `refused` with its reason, so that its table row says why it has no numbers."""
from __future__ import annotations

import sys
from pathlib import Path

from methods import parse_spec
from runners.job import stages
from runners.job.spec import Shared
from runners.planning.plan import Entry, make_plan
from runners.store.context import now
from runners.store.records import write_record
from runners.store.schema import Status


def refusals(entries: list[Entry], common: Shared) -> dict[str, str]:
    """The method specs that cannot work on the model's architecture, each with its one-line reason (the method's
    `applies_to`, asked with the architecture read from the model's config on the meta device: nothing loads)."""
    from methods.architecture import describe_config

    methods = [e for e in entries if e.stages == stages.DEFAULT]
    if not methods:
        return {}
    arch = describe_config(common.model.path, common.num_labels)
    reasons = {e.label: why for e in methods if (why := parse_spec(e.label).method.applies_to(arch))}
    for label, why in reasons.items():
        print(f"{label}: refused on {arch.model_type}, nothing loaded: {why}", file=sys.stderr)
    return reasons


def refuse(reasons: dict[str, str], entries: list[Entry], seeds: list[int], settings: dict, common: Shared,
           folder: Path) -> None:
    """A `refused` record for each refused entry × seed, so that the table says why its row has no numbers."""
    for job in make_plan(entries, seeds, settings, common, folder, rerun=True).jobs:
        write_record(Path(job.record_path), {**job.base_record(Status.REFUSED, reasons[job.config.method]),
                                             "timestamp": now()})
