"""Token classification (NER, part-of-speech tagging): a linear layer from every token to the labels."""

from __future__ import annotations

import torch

from ..config import BertConfig
from ..layers import Linear
from .base import Head, LastLayer, Rows
from .labels import label_count


class TokenClassificationHead(Head):
    name = "token-classification"
    architecture = "ForTokenClassification"
    renames = ((r"classifier\.(weight|bias)", r"head.out.\1"),)
    reads = frozenset({Rows.TOKENS})
    outputs = {"logits": Rows.TOKENS}

    def __init__(self, config: BertConfig, num_labels: int):
        super().__init__()
        self.out = Linear(config.hidden_size, num_labels)

    @classmethod
    def from_checkpoint(cls, config, state):
        return cls(config, label_count(config, state))

    def widths(self):
        return {"logits": self.out.weight.shape[0]}

    def forward(self, last: LastLayer, ops) -> dict[str, torch.Tensor]:
        return {"logits": ops.linear(last.at(Rows.TOKENS), self.out.weight, self.out.bias)}       # [..., L]
