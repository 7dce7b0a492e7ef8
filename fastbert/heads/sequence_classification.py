"""Sequence classification: tanh(dense(first token)), then a linear layer to the labels.

BERT's ``*ForSequenceClassification`` runs its pooler and then ``classifier``; RoBERTa's and XLM-R's run
``classifier.dense``, tanh and ``classifier.out_proj``. Both are this computation, so one head serves both, and
cross-encoders (rerankers) are this head with one label. It reads each sequence's first token only, so past a
few tokens the engine runs the last layer on one row per sequence."""

from __future__ import annotations

import torch

from ..config import BertConfig
from ..layers import Linear
from .base import Head, LastLayer, Rows
from .labels import label_count


class SequenceClassificationHead(Head):
    name = "sequence-classification"
    architecture = "ForSequenceClassification"
    renames = (
        (r"(?:pooler|classifier)\.dense\.(weight|bias)", r"head.dense.\1"),
        (r"classifier(?:\.out_proj)?\.(weight|bias)", r"head.out.\1"),
    )
    reads = frozenset({Rows.FIRST})
    outputs = {"logits": Rows.SEQUENCES}

    def __init__(self, config: BertConfig, num_labels: int):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.out = Linear(config.hidden_size, num_labels)

    @classmethod
    def from_checkpoint(cls, config, state):
        return cls(config, label_count(config, state))

    def widths(self):
        return {"logits": self.out.weight.shape[0]}

    def forward(self, last: LastLayer, ops) -> dict[str, torch.Tensor]:
        pooled = torch.tanh(ops.linear(last.at(Rows.FIRST), self.dense.weight, self.dense.bias))         # [B, H]
        return {"logits": ops.linear(pooled, self.out.weight, self.out.bias)}                           # [B, L]
