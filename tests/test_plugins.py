"""Methods from outside the repository: `--plugin` files and modules, entry points, and their one-line errors."""
from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

import methods
from methods import registry
from runners import compare

EXTENDING = (Path(__file__).resolve().parent.parent / "docs" / "extending.md").read_text()
# docs/extending.md's example plugin, run here as it is printed there.
EXAMPLE = next(b for b in re.findall(r"```python\n(.*?)```", EXTENDING, re.S) if '@register("lnf_sgd")' in b)

# A plugin with hyperparameters of its own, written the way methods/ files are (postponed annotations).
WITH_PARAMS = '''"""The head alone, with a hyperparameter of its own."""
from __future__ import annotations

from dataclasses import dataclass

from methods import HParams, Method, freeze_all_but, hp, register


@dataclass
class ProbeParams(HParams):
    lr: float = hp(1e-3, "peak learning rate")
    note: str = hp("x", "a value only this method has")


@register("outside_probe")
class OutsideProbe(Method):
    summary = "the head alone, from a plugin"
    Params = ProbeParams
    trainable = ("score.",)

    def adapt(self, model):
        return freeze_all_but(model, *self.trainable)
'''


@pytest.fixture(autouse=True)
def registry_as_found(monkeypatch):
    """What a test's plugins register leaves with the test: the registry, and their modules."""
    registry.METHODS.discover()  # first: run alone, the file would otherwise keep an empty registry for the next test
    monkeypatch.setattr(registry.METHODS, "entries", dict(registry.METHODS.entries))
    monkeypatch.setattr(registry.METHODS, "_discovered", False)  # entry points are looked up again
    yield
    for name in [m for m in sys.modules if m.startswith(("peft_lab_plugin_", "outside_"))]:
        del sys.modules[name]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def run(tmp_path, model_dir, data_dir, *argv: str) -> dict:
    results = tmp_path / "results"
    assert compare.main(["--model", str(model_dir), "--data-dir", str(data_dir), "--budget", "16samples",
                         "--batch-size", "16", "--eval-limit", "12", "--quiet", "--results", str(results),
                         *argv]) == 0
    return {r["method"]["label"]: r for r in
            (json.loads(p.read_text()) for p in (results / data_dir.name / "runs").glob("*.json"))}


def test_a_method_in_a_file_outside_the_repository_runs_through_compare(tmp_path, tiny_model_dir, tweets_dir,
                                                                        cache_dir, in_process):
    plugin = write(tmp_path, "lnf_sgd.py", EXAMPLE)
    records = run(tmp_path, tiny_model_dir, tweets_dir, "--plugin", str(plugin), "--methods", "lnf_sgd:lr=0.01")
    r = records["lnf_sgd:lr=0.01"]
    assert r["status"] == "ok" and r["method"]["name"] == "lnf_sgd"
    # the method's own optimizer trained it: SGD's one momentum buffer, where AdamW would hold two moments and steps
    assert r["measurements"]["memory_breakdown"]["optimizer_mib"] == pytest.approx(
        4 * r["measurements"]["trainable_params"] / 2**20)


def test_a_run_in_its_own_process_imports_the_plugin_too(tmp_path, tiny_model_dir, tweets_dir, cache_dir,
                                                         monkeypatch):
    plugin = write(tmp_path, "outside_probe.py", WITH_PARAMS)
    monkeypatch.chdir(tmp_path)  # a relative path: the run's process gets it resolved
    records = run(tmp_path, tiny_model_dir, tweets_dir, "--plugin", plugin.name, "--methods",
                  "outside_probe:note=y")
    r = records["outside_probe:note=y"]
    assert r["status"] == "ok", r["error"]
    assert r["method"]["params"]["note"] == "y"
    assert r["measurements"]["trainable_params"] == 32 * 3  # the score layer: 32 wide, 3 labels


def test_list_shows_a_plugin_and_a_module_path_works(tmp_path, monkeypatch, capsys):
    write(tmp_path, "outside_mod.py", WITH_PARAMS)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert compare.main(["--plugin", "outside_mod", "--list"]) == 0
    assert "outside_probe" in capsys.readouterr().out


@pytest.mark.parametrize("plugin, message", [
    ("outside_nowhere", "error: cannot import plugin 'outside_nowhere': ModuleNotFoundError: No module named "
                        "'outside_nowhere'\n"),
    ("nowhere/mine.py", "error: plugin 'nowhere/mine.py': no such file\n"),
    ("broken.py", "error: cannot import plugin 'broken.py': RuntimeError: needs a GPU, and a second line\n"),
    ("again.py", "error: cannot import plugin 'again.py': ValueError: method 'lora' is already registered by "
                 "Lora\n"),
])
def test_a_plugin_that_does_not_import_is_one_line_and_exit_2(plugin, message, tmp_path, monkeypatch, capsys):
    write(tmp_path, "broken.py", 'raise RuntimeError("needs a GPU,\\nand a second line")\n')
    write(tmp_path, "again.py", EXAMPLE.replace('"lnf_sgd"', '"lora"'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        compare.main(["--plugin", plugin, "--methods", "lora"])
    assert e.value.code == 2 and capsys.readouterr().err == message


def test_an_unknown_method_is_told_apart_from_a_plugin(tmp_path, capsys):
    plugin = write(tmp_path, "lnf_sgd.py", EXAMPLE)
    assert compare.main(["--plugin", str(plugin), "--methods", "lnf_sdg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown method 'lnf_sdg'. Did you mean 'lnf_sgd'?") and err.count("\n") == 1


def test_installed_entry_points_register_their_methods(tmp_path, monkeypatch):
    write(tmp_path, "outside_ep.py", WITH_PARAMS)
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [metadata.EntryPoint(name="probe", value="outside_ep", group=registry.ENTRY_POINTS)]
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: points if group == registry.ENTRY_POINTS
                        else [])
    assert "outside_probe" in registry.registered()
    assert methods.parse_spec("outside_probe:note=z").method.params.note == "z"


def test_a_broken_entry_point_is_one_line(monkeypatch):
    points = [metadata.EntryPoint(name="gone", value="outside_gone", group=registry.ENTRY_POINTS)]
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: points)
    with pytest.raises(registry.PluginError, match=r"^cannot import plugin 'gone' \(outside_gone, entry point of "
                                                    r"an installed package\): ModuleNotFoundError"):
        registry.get("lora")
