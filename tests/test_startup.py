"""The first seconds of a command: `--help` and `--list` import no heavy library, and a process that ignores SIGINT
says how to stop it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from runners import bench
from runners.core.files import PROJECT_ROOT

HEAVY = ("torch", "transformers", "peft", "sklearn", "pandas", "scipy", "datasets", "bitsandbytes", "gensim",
         "matplotlib")
REPORT = f"import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"


def python(code: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}  # this checkout, not an installed copy
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env,
                          timeout=120, **kwargs)


def test_importing_the_command_and_the_registries_imports_no_heavy_library():
    done = python(f"import runners.compare, methods, baselines; {REPORT}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("flag", ["--help", "--list", "--list --markdown"])
def test_help_and_list_import_no_heavy_library(flag):
    argv = ["x", *flag.split()]
    done = python(f"import runpy, sys\nsys.argv = {argv!r}\ntry:\n    runpy.run_module('runners.compare', "
                  f"run_name='__main__')\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n{REPORT}")
    assert done.returncode == 0, done.stderr
    *shown, heavy = done.stdout.strip().splitlines()
    assert heavy == "[]" and len(shown) > 10  # and it did print the help or the list


def test_a_flag_mistake_is_said_before_torch_loads(tweets_dir, tmp_path):
    code = ("import sys; from runners import compare; "
            f"code = compare.main(['--methods', 'lora', '--budget', '5parsecs', '--data-dir', {str(tweets_dir)!r}, "
            f"'--results', {str(tmp_path)!r}]); "
            "print(code, sorted(m for m in ('torch', 'transformers', 'sklearn', 'peft') if m in sys.modules))")
    done = python(code)
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.startswith("error: bad budget '5parsecs'")


def test_the_registries_still_build_what_they_lazily_import():
    from baselines import parse_spec as parse_baseline
    from methods import parse_spec

    pipeline = parse_baseline("w2v-logreg").baseline.build(seed=0)  # scikit-learn, imported in build
    assert [name for name, _ in pipeline.steps] == ["features", "classifier"]
    assert parse_spec("head:cache_features=true").method.wants_example_ids


def test_a_process_started_with_sigint_ignored_says_how_to_stop_it(tmp_path):
    code = ("import sys; from runners import compare; "
            f"sys.exit(compare.main(['--methods', 'lroa', '--results', {str(tmp_path)!r}]))")
    ignored = python(code, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as `cmd &` in a script
    assert ignored.returncode == 2  # the command goes on as before: here, to its one-line mistake
    warning, error = ignored.stderr.splitlines()
    assert warning.startswith("warning: SIGINT is ignored in this process") and "kill " in warning
    assert error.startswith("error: unknown method 'lroa'")
    plain = python(code)
    assert plain.returncode == 2 and "SIGINT" not in plain.stderr


def test_bench_says_so_too(capsys):
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert bench.main([]) == 2  # no --model: its one-line mistake, after the warning
    finally:
        signal.signal(signal.SIGINT, old)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: SIGINT is ignored") and f"kill {os.getpid()}" in err[0]
