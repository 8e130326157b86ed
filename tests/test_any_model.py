"""Any sequence classifier, through the commands: a comparison on a Qwen3-like folder runs each method or refuses it
in one line and names the architecture and the modules; `--list --model` says which methods apply; and a hub id
other than gpt2 downloads through a hub (tests/fixtures/fake_hub.py on 127.0.0.1), as a user's would."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runners import compare

from architectures import write_tiny

ROOT = Path(__file__).resolve().parent.parent
FAKE_HUB = Path(__file__).parent / "fixtures" / "fake_hub.py"
QWEN_ATTENTION_MLP = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory) -> Path:
    return write_tiny("qwen3", tmp_path_factory.mktemp("qwen3") / "tiny-qwen3")


def _records(results: Path) -> dict:
    return {r["config"]["method"]: r for r in
            (json.loads(p.read_text()) for p in sorted((results / "tweets" / "runs").glob("*.json")))}


def test_compare_on_any_model_runs_or_refuses_each_method_and_names_the_architecture(qwen3, tweets_dir, cache_dir,
                                                                                      in_process, tmp_path, capsys):
    results = tmp_path / "results"
    assert compare.main(["--methods", "full,head,lora,qlora,dora,prompt,bitfit", "--model", str(qwen3),
                         "--data-dir", str(tweets_dir), "--budget", "2steps", "--batch-size", "8",
                         "--eval-limit", "8", "--skip-serving", "--quiet", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert "bitfit: refused on qwen3, nothing loaded: qwen3 has no bias terms in its body" in err
    recs = _records(results)
    assert recs["bitfit"]["status"] == "refused" and "no bias terms" in recs["bitfit"]["error"]
    assert recs["bitfit"]["measurements"] is None  # refused before anything loaded
    for label in ("full", "head", "lora", "qlora", "dora", "prompt"):
        r = recs[label]
        assert r["status"] == "ok", (label, r["error"])
        assert r["loaded"]["model_type"] == "qwen3" and r["loaded"]["kind"] == "decoder"
        assert r["loaded"]["head"] == ["score"] and r["loaded"]["activation"] == "silu"  # no fused GELU to swap in
        assert r["loaded"]["pad_token_id"] == r["model"]["pad_token"]["id"] == 50256
        assert r["model"]["pad_token"]["from"].startswith("eos")  # the tokenizer names none: the same for all
        assert r["model"]["architecture"]["kv_heads"] == 2 and r["measurements"]["flops"] > 0
    lora = {"adapted": QWEN_ATTENTION_MLP, "trained": ["score"]}
    assert recs["lora"]["method"]["modules"] == recs["qlora"]["method"]["modules"] == lora
    assert recs["dora"]["method"]["modules"] == lora
    assert recs["head"]["method"]["modules"] == {"trained": ["score"]}
    assert recs["full"]["method"]["modules"] == {"trained": ["every weight"]}
    assert recs["prompt"]["method"]["modules"] == {"added": ["20 virtual tokens before the input"],
                                                   "trained": ["score"]}
    md = (results / "tweets" / "comparison.md").read_text()
    assert "- **Architecture:** qwen3, a decoder (model.layers ×2 blocks; it scores its last real token" in md
    # the methods that adapted the same modules share a group, its labels in the order their runs ended
    adapted = re.search(rf"; ([a-z, ]+): adapted {re.escape(', '.join(QWEN_ATTENTION_MLP))}; trained score", md)
    assert adapted and set(adapted.group(1).split(", ")) == {"lora", "qlora", "dora"}, md
    assert "| bitfit " in md and "refused" in md  # the row says why it has no numbers


def test_list_with_a_model_says_which_methods_apply_and_what_they_adapt(tmp_path, capsys):
    modernbert = write_tiny("modernbert", tmp_path / "modernbert")
    assert compare.main(["--list", "--model", str(modernbert)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"On {modernbert}: a modernbert encoder (model.layers ×2; scores its pooled first token "
                          f"with head+classifier): 14 methods apply, 2 refused")
    lines = out.splitlines()
    assert any(line.strip() == f"on {modernbert}: adapted attn.Wqkv, attn.Wo, mlp.Wi, mlp.Wo; trained head, classifier"
               for line in lines[lines.index(next(x for x in lines if x.startswith("lora "))):][:4])
    assert f"on {modernbert}: refused: modernbert's forward takes no key/value cache" in out  # prefix
    assert f"on {modernbert}: refused: modernbert has no bias terms" in out  # bitfit


def test_a_hub_id_other_than_gpt2_downloads_through_the_hub(qwen3, tweets_dir, tmp_path):
    """The real hub path, against a hub-compatible server on the loopback serving the tiny Qwen3 folder."""
    port_file, pid_file = tmp_path / "port", tmp_path / "hub.pid"
    hub = subprocess.Popen([sys.executable, str(FAKE_HUB), "serve", "--port", "0", "--port-file", str(port_file),
                            "--pid-file", str(pid_file), "--workdir", str(tmp_path / "work"),
                            "--repo", f"model:lab-tests/tiny-qwen3={qwen3}", "--log", str(tmp_path / "hub.log")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert hub.poll() is None, hub.stderr.read().decode()
            subprocess.run(["sleep", "0.05"])
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
        env.update(HF_ENDPOINT=f"http://127.0.0.1:{port_file.read_text().strip()}", HF_HOME=str(tmp_path / "hf"),
                   PEFT_LAB_CACHE=str(tmp_path / "cache"))
        results = tmp_path / "results"
        run = subprocess.run([sys.executable, "-m", "runners.compare", "--methods", "lora", "--model",
                              "lab-tests/tiny-qwen3", "--data-dir", str(tweets_dir), "--budget", "1steps",
                              "--batch-size", "8", "--eval-limit", "8", "--skip-serving", "--quiet", "--results",
                              str(results)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    record = _records(results)["lora"]
    assert record["model"]["name"] == "lab-tests/tiny-qwen3" and len(record["model"]["commit"]) == 40
    assert record["model"]["path"].startswith(str(tmp_path / "hf"))  # the hub's cache, not the folder served
    assert record["loaded"]["model_type"] == "qwen3"
    served = (tmp_path / "hub.log").read_text()
    assert "model.safetensors" in served and "pytorch_model.bin" not in served
