"""One run in its own process: run its stages (build and train the method's model, test it...), write its record.

Started by an executor (runners.execute) as `python -m runners.job.worker JOB.json`, for `runners.compare` and
`runners.bench` alike; the job file (runners.job.spec.Job) holds the run config and everything the parent already
resolved (model folder, tokenized data, identities). Every way a run can end, including errors, out-of-memory,
Ctrl-C and SIGTERM, ends in a record with a status.
"""
from __future__ import annotations

import os
import sys
import traceback
import warnings
from pathlib import Path

import torch

from methods import load_plugin
from runners.core.signals import ExitCode, Stopped, ignore_stop_signals, release_held_signals, stop_on_signals
from runners.data.batches import load_tokenized
from runners.job import stages
from runners.job.loop import Diverged
from runners.job.spec import Job
from runners.job.stages import Context
from runners.measure import environment as env
from runners.measure import memory
from runners.store.context import now
from runners.store.records import write_record
from runners.store.schema import RecordError, Status


def run(job: Job) -> dict:
    """Run the stages the job lists (by default train, evaluate, serve) for one method spec and seed; return the
    record's results part."""
    if threads := os.environ.get("PEFT_LAB_THREADS"):  # this run's share of the cores, from a pool (execute.pool)
        torch.set_num_threads(int(threads))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "score.weight newly initialised" report is expected, every time
    hf_logging.disable_progress_bar()
    # peft still calls transformers' pre-5.x names (is_gradient_checkpointing); nothing for a user to act on.
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6", category=FutureWarning)
    for plugin in job.plugins:  # the parent's --plugin modules: the method may be one of theirs
        load_plugin(plugin)
    cfg = job.config
    device = env.resolve_device(cfg.device)
    env.reset_peak_memory(device)
    data = load_tokenized(job.tokens)
    if cfg.search:  # a learning-rate search trial never sees the test split: it is not there to evaluate
        data.pop("test")
    ctx = Context(job, cfg, device, data)
    where = {**job.placement, **env.device_info(device, cfg.bf16(device))}
    return {**stages.run_stages(ctx, job.stages), "device": where}


def main(job_path: str) -> int:
    job = Job.from_json(Path(job_path).read_text())
    record = job.base_record()
    code = ExitCode.OK
    # Ctrl-C and SIGTERM both end in a `cancelled` record; the first raises, later ones are ignored so that they
    # cannot cut that record short (a terminal's Ctrl-C reaches this process and the parent passes it on too).
    with stop_on_signals(once=True):
        try:
            try:
                release_held_signals()  # one that came while Python and torch loaded is raised here, in the try
                record.update(run(job))
            finally:
                ignore_stop_signals()  # the run is over: a signal now has nothing left to stop but the record
        except torch.OutOfMemoryError as e:
            record.update(status=Status.OOM.value, error=_one_line(e))
        except memory.DoesNotFit as e:
            record.update(status=Status.DOES_NOT_FIT.value, error=str(e))
        except Diverged as e:
            record.update(status=Status.DIVERGED.value, error=str(e))
        except KeyboardInterrupt as e:
            stop = e if isinstance(e, Stopped) else Stopped()
            record.update(status=Status.CANCELLED.value, error=f"interrupted ({stop.cause})")
            code = stop.exit_code
        except Exception as e:  # a failed run is a result too; the comparison goes on
            record.update(status=Status.FAILED.value, error=_one_line(e), traceback=traceback.format_exc(limit=-8))
            code = ExitCode.ERROR
        record["timestamp"] = now()
        try:
            try:
                write_record(Path(job.record_path), record)
            except RecordError as e:  # e.g. a NaN metric: the run failed, and the tables must not break on it
                record = {**job.base_record(Status.FAILED, f"the run's record is not valid: {e}"),
                          "timestamp": record["timestamp"]}
                write_record(Path(job.record_path), record)
                code = ExitCode.ERROR
        except OSError as e:  # disk full or no permission: nothing half-written stays; the parent records `failed`
            print(f"error: cannot write the record {job.record_path}: {e.strerror or e}", file=sys.stderr)
            return ExitCode.ERROR
    return code


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:500]}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
