"""BERT's pooler: tanh(dense(first token)), read by BertModel's users as ``pooler_output``."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..config import BertConfig
from .base import Head, LastLayer, Rows


class Pooler(Head):
    name = "pooler"
    architecture = None
    renames = ((r"pooler\.dense\.(weight|bias)", r"pooler.\1"),)
    reads = frozenset({Rows.FIRST})
    outputs = {"pooler_output": Rows.SEQUENCES}

    def __init__(self, config: BertConfig):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(config.hidden_size, config.hidden_size))
        self.bias = nn.Parameter(torch.empty(config.hidden_size))

    def widths(self):
        return {"pooler_output": self.weight.shape[0]}

    def forward(self, last: LastLayer, ops) -> dict[str, torch.Tensor]:
        return {"pooler_output": torch.tanh(ops.linear(last.at(Rows.FIRST), self.weight, self.bias))}     # [B, H]
