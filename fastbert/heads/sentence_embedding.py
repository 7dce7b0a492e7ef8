"""Sentence embeddings as sentence-transformers computes them: ``Pooling`` (one or several modes, concatenated in
its order), then its ``Dense`` modules with their activation, then ``Normalize``; in fp32 after the encoder.

CLS and last-token pooling read one row per sequence, so with nothing else asked the last layer runs there alone;
the other modes read every token, pooled per sequence of a packed batch by ``ops.pool_packed``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UnsupportedModelError
from ..layers import Linear
from .base import Head, LastLayer, Rows

ROW_MODES = {"cls": Rows.FIRST, "lasttoken": Rows.LAST}
TOKEN_MODES = ("mean", "mean_sqrt_len_tokens", "weightedmean", "max")
POOLING_MODES = (*ROW_MODES, *TOKEN_MODES)

# sentence-transformers names a Dense module's activation by its torch class
ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": torch.tanh,
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.ReLU": F.relu,
    "torch.nn.modules.activation.GELU": F.gelu,
    "torch.nn.modules.activation.Sigmoid": torch.sigmoid,
    "torch.nn.modules.activation.SiLU": F.silu,
}


@dataclass(frozen=True)
class DenseSpec:
    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "torch.nn.modules.activation.Tanh"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            known = ", ".join(name.rsplit(".", 1)[1] for name in ACTIVATIONS)
            raise UnsupportedModelError(f"Dense activation {self.activation!r} is not supported; fastbert runs {known}")


class SentenceEmbeddingHead(Head):
    name = "sentence-embedding"
    architecture = None
    outputs = {"sentence_embedding": Rows.SEQUENCES}
    # its callers want the embedding alone: copying the token states out of every call would cost more than pooling
    returns_hidden_state = False

    def __init__(self, hidden_size: int, modes: tuple[str, ...], dense: tuple[DenseSpec, ...] = (),
                 normalize: bool = False):
        super().__init__()
        unknown = [mode for mode in modes if mode not in POOLING_MODES]
        if unknown or not modes:
            raise UnsupportedModelError(f"pooling mode {unknown or modes!r} is not supported; sentence-transformers' "
                                        f"modes are {', '.join(POOLING_MODES)}")
        self.modes = tuple(modes)
        self.reads = frozenset(Rows.TOKENS if mode in TOKEN_MODES else ROW_MODES[mode] for mode in modes)
        width = hidden_size * len(modes)
        self.dense = torch.nn.ModuleList()
        self.activations = []
        for spec in dense:
            if spec.in_features != width:
                raise UnsupportedModelError(f"a Dense module takes {spec.in_features} inputs, and the layer before "
                                            f"it gives {width}")
            self.dense.append(Linear(spec.in_features, spec.out_features, bias=spec.bias))
            self.activations.append(ACTIVATIONS[spec.activation])
            width = spec.out_features
        self.normalize = normalize
        self.dimension = width

    def widths(self):
        return {"sentence_embedding": self.dimension}

    def forward(self, last: LastLayer, ops) -> dict[str, torch.Tensor]:
        x = torch.cat([self._pool(mode, last, ops) for mode in self.modes], dim=-1)                 # [B, modes * H]
        for dense, activation in zip(self.dense, self.activations):
            x = activation(F.linear(x, dense.weight, dense.bias))
        if self.normalize:
            x = F.normalize(x, p=2, dim=-1)
        return {"sentence_embedding": x}

    @staticmethod
    def _pool(mode: str, last: LastLayer, ops) -> torch.Tensor:
        if mode in ROW_MODES:
            return last.at(ROW_MODES[mode]).float()
        if last.cu_seqlens is not None:
            return ops.pool_packed(last.tokens, last.cu_seqlens, mode)
        return ops.pool_padded(last.tokens, last.key_mask, mode)
