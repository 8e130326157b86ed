"""peft methods that do not apply to GPT-2: they reject its `Conv1D` projections. docs/usage.md lists exactly these."""
from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

USAGE = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text()
# peft config class -> the name the docs use
REJECT_CONV1D = {"LoHaConfig": "LoHa", "LoKrConfig": "LoKr", "OFTConfig": "OFT", "BOFTConfig": "BOFT",
                 "HRAConfig": "HRA", "MissConfig": "MiSS", "C3AConfig": "C3A", "DeloraConfig": "DeLoRA",
                 "AdamssConfig": "AdaMSS", "BeftConfig": "BEFT", "SupertuningConfig": "SuperTuning",
                 "PsoftConfig": "PSOFT", "ShiraConfig": "SHiRA", "RoadConfig": "RoAd", "LilyConfig": "Lily",
                 "PolyConfig": "Poly"}


@pytest.mark.parametrize("config_name", sorted(REJECT_CONV1D))
def test_peft_method_rejects_gpt2_conv1d(config_name):
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_head=2, n_embd=32, n_positions=16,
                                                     vocab_size=64, pad_token_id=0, bos_token_id=0,
                                                     eos_token_id=0, num_labels=2))
    config = getattr(peft, config_name)(task_type="SEQ_CLS", target_modules=["c_attn"])
    with pytest.raises((TypeError, ValueError, NotImplementedError), match="(?i)not support|Conv1D"):
        peft.get_peft_model(model, config)
    assert f"{REJECT_CONV1D[config_name]}," in USAGE or f"{REJECT_CONV1D[config_name]}." in USAGE
