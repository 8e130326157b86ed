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
    """A sequence classifier whose frozen body's output, the feature its linear head `head` scores, is computed once
    per training example.

    Training batches carry `example_ids`; evaluation batches do not and run the body every time.
    """

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.model = model
        self.head_name = head
        self.features = torch.empty(0, self.head.in_features)  # row i: example i's feature, as the head scores it
        self.cached = np.zeros(0, dtype=bool)  # which rows hold one; on the host, so a lookup needs no sync

    @property
    def head(self) -> nn.Linear:  # the model's own (not registered twice: the state dict stays the model's)
        return self.model.get_submodule(self.head_name)

    @property
    def base_model(self) -> nn.Module:  # the body, where the position hook of `Method.build` goes
        return self.model.base_model

    @property
    def config(self):
        return self.model.config

    def train(self, mode: bool = True) -> CachedFeatures:
        super().train(mode)
        self.model.eval()  # no dropout (the body's, or one before the head): a feature must not depend on when it was
        # cached; the head, one linear layer, computes the same in either mode
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, example_ids: torch.Tensor | None = None,
                **_) -> SequenceClassifierOutput:
        if example_ids is None:
            features = self.body(input_ids, attention_mask)
        else:
            features = self._lookup(example_ids.numpy(), input_ids, attention_mask)
        logits = self.head(features)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def body(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """What the head scores, taken at its input as the model's own forward gives it: an encoder's pooled
        feature; for a decoder, whose head scores every position, the hidden state at each row's last non-pad
        token, the one its classifier's logits are taken at."""
        seen = []
        hook = self.head.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
        try:
            self.model(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            hook.remove()
        features = seen[-1]
        if features.dim() == 2:
            return features
        not_pad = (input_ids != self.model.config.pad_token_id).int()
        last = (torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32) * not_pad).argmax(-1)
        return features[torch.arange(len(features), device=features.device), last]

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
        features = torch.zeros(size, self.head.in_features, device=device)
        features[:len(self.features)] = self.features.to(device)
        self.features, self.cached = features, np.concatenate([self.cached, np.zeros(size - len(self.cached), bool)])
