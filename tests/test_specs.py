"""Method specs on the command line, and the registry's rules."""
from __future__ import annotations

import pytest

import methods
from methods import Method, SpecError, parse_spec, parse_specs, register
from methods.registry import METHODS


def test_defaults_and_typed_overrides():
    spec = parse_spec("lora:r=16:alpha=32:targets=c_attn+c_fc:gradient_checkpointing=yes")
    p = spec.method.params
    assert spec.label == "lora:r=16:alpha=32:targets=c_attn+c_fc:gradient_checkpointing=yes"
    assert (p.r, p.alpha, p.targets, p.gradient_checkpointing) == (16, 32.0, ("c_attn", "c_fc"), True)
    assert parse_spec("lora").method.params.r == 8


def test_qlora_is_lora_with_checkpointing_on_by_default():
    q = parse_spec("qlora").method
    assert isinstance(q, methods.get("lora")) and q.params.gradient_checkpointing
    assert not parse_spec("qlora:gradient_checkpointing=false").method.params.gradient_checkpointing


@pytest.mark.parametrize("text, message", [
    ("lroa", "unknown method 'lroa'. Did you mean 'lora'? Registered: "),
    ("lora:alpah=4", "unknown parameter 'alpah' for lora. Did you mean 'alpha'? Allowed: lr, lr_range, weight_decay"),
    ("lora:r=abc", "r='abc' is not a valid int"),
    ("lora:r=0", "r must be >= 1, got 0"),
    ("lora:r", "expected key=value, got 'r'"),
    ("lora:r=4:r=8", "'r' given twice"),
    ("full:lr=-1", "lr must be > 0"),
    ("qlora:double_quant=maybe", "double_quant='maybe' is not a valid bool"),
    (":r=4", "empty method name"),
])
def test_bad_specs_raise_one_line(text, message):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_spec_list():
    assert [s.label for s in parse_specs("full, lora:r=4 ,head")] == ["full", "lora:r=4", "head"]
    with pytest.raises(SpecError, match="no method given"):
        parse_specs(" , ")
    with pytest.raises(SpecError, match="more than once: lora"):
        parse_specs("lora,head,lora")


def test_registry_rejects_duplicates_and_bad_names():
    class Dummy(Method):
        trainable = ("score",)

        def adapt(self, model):
            return model

    with pytest.raises(ValueError, match="already registered"):
        register("lora")(Dummy)
    for bad in ("LoRA", "my-method", "", "1x"):
        with pytest.raises(ValueError, match="lowercase"):
            register(bad)(Dummy)
    with pytest.raises(TypeError):
        register("notamethod")(object)
    try:
        assert register("dummy_test")(Dummy) is Dummy and methods.get("dummy_test") is Dummy
    finally:
        METHODS.entries.pop("dummy_test", None)


def test_prefix_with_gradient_checkpointing_is_refused_before_any_run():
    from methods import SpecError, parse_spec

    with pytest.raises(SpecError, match="gradient_checkpointing=true does not work with prefix tuning"):
        parse_spec("prefix:gradient_checkpointing=true")
