"""FLOPs are measured per method, and FLOPs and time budgets stop where they should."""
from __future__ import annotations

import pytest
import torch

import methods
from methods import ModelContext
from runners.measure import flops

CPU = torch.device("cpu")


def flop_model(spec: str, model_dir) -> flops.FlopModel:
    torch.manual_seed(0)
    method = methods.parse_spec(spec).method
    model = method.build(ModelContext(str(model_dir), 2, 50256, CPU))
    return flops.measure(model, CPU, method.unseen_forward_flops)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Specs on a 128-wide GPT-2, with rank-1 adapters so that their own FLOPs are ~1% of a projection's."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    folder = tmp_path_factory.mktemp("wide-gpt2")
    config = GPT2Config(n_layer=2, n_head=2, n_embd=128, n_positions=64, vocab_size=50257, pad_token_id=50256)
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    specs = ["full", "head", "lora:r=1", "lora:r=1:gradient_checkpointing=true",
             "qlora:r=1:gradient_checkpointing=false", "qlora:r=1"]
    return {s.replace(":r=1", ""): flop_model(s, folder) for s in specs}


def test_head_only_skips_the_body_backward_and_lora_skips_weight_gradients(measured):
    full, head, lora = measured["full"].linear, measured["head"].linear, measured["lora"].linear
    # per token: full ~ 6N (forward, input and weight gradients), head ~ 2N (forward only), LoRA ~ 4N less the
    # input gradient of the first projection (its input, the frozen embeddings, needs none)
    assert head == pytest.approx(full / 3, rel=0.03)
    assert 0.6 * full < lora < 2 * full / 3


def test_attention_is_counted_on_the_cpu(measured):
    assert measured["full"].quadratic > 0 and measured["head"].quadratic > 0


def test_checkpointing_adds_a_forward(measured):
    extra = measured["lora:gradient_checkpointing=true"].linear - measured["lora"].linear
    forward = measured["head"].linear
    assert 0.95 * forward < extra < 1.25 * forward  # one more forward of the body (and of the adapters)


def test_4bit_base_costs_the_same_flops_as_lora(measured):
    # bitsandbytes' forward matmul is invisible to the counter; QLoRA's unseen_forward_flops must credit it
    assert measured["qlora:gradient_checkpointing=false"].linear == pytest.approx(measured["lora"].linear, rel=1e-6)
    assert measured["qlora"].linear == pytest.approx(measured["lora:gradient_checkpointing=true"].linear, rel=1e-6)


def test_step_flops_follow_the_padded_shape():
    m = flops.FlopModel(linear=10.0, quadratic=1.0)
    assert m.step(batch=2, width=4) == 2 * 4 * (10 + 4)
