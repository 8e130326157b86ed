"""The feature cache of `head:cache_features=true` (methods.head): a torch module, kept apart so that importing the
registry does not import torch (the folder scan in methods/__init__.py skips `_*` modules; methods.head imports this
when a run adapts its model)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput


class CachedFeatures(nn.Module):
    """A GPT-2 sequence classifier whose frozen body's output is computed once per training example.

    Training batches carry `example_ids`; evaluation batches do not and run the body every time.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.features = torch.empty(0, model.config.n_embd)  # row i: example i's pooled hidden state
        self.cached = np.zeros(0, dtype=bool)  # which rows hold one; on the host, so a lookup needs no sync

    @property
    def base_model(self) -> nn.Module:  # the body, where the position hook of `Method.build` goes
        return self.model.base_model

    @property
    def config(self):
        return self.model.config

    def train(self, mode: bool = True) -> CachedFeatures:
        super().train(mode)
        self.model.base_model.eval()  # no dropout: a feature must not depend on when it was cached
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, example_ids: torch.Tensor | None = None,
                **_) -> SequenceClassifierOutput:
        if example_ids is None:
            features = self.body(input_ids, attention_mask)
        else:
            features = self._lookup(example_ids.numpy(), input_ids, attention_mask)
        logits = self.model.score(features)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def body(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The hidden state at each row's last non-pad token, the one GPT2ForSequenceClassification scores."""
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        not_pad = (input_ids != self.model.config.pad_token_id).int()
        last = (torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32) * not_pad).argmax(-1)
        return hidden[torch.arange(len(hidden), device=hidden.device), last]

    def _lookup(self, ids: np.ndarray, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        rows = torch.from_numpy(ids).to(input_ids.device, non_blocking=True)
        if ids.max() >= len(self.cached):
            self._grow(int(ids.max()) + 1, input_ids.device)
        if not self.cached[ids].all():
            self.features[rows] = self.body(input_ids, attention_mask).to(self.features.dtype)
            self.cached[ids] = True
        return self.features[rows]

    def _grow(self, at_least: int, device: torch.device) -> None:
        size = max(at_least, 2 * len(self.cached))
        features = torch.zeros(size, self.model.config.n_embd, device=device)
        features[:len(self.features)] = self.features.to(device)
        self.features, self.cached = features, np.concatenate([self.cached, np.zeros(size - len(self.cached), bool)])
