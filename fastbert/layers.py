"""Parameter containers for the encoder and its heads. They hold tensors only: every one comes from a checkpoint,
so nothing is initialized, and building a model on the meta device costs nothing. The math is in ``fastbert.ops``."""

from __future__ import annotations

import torch
import torch.nn as nn


class Linear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None


class Table(nn.Module):
    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, dim))


class LayerNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.eps = eps


def norm_args(norm: LayerNorm) -> tuple:
    return norm.weight, norm.bias, norm.eps
