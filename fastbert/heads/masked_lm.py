"""The masked-language-model head: transform (dense, GELU, LayerNorm), then the decoder over the vocabulary.

It reads the rows ``logits_at`` selects (fill-mask's mask tokens), or every token when nothing is selected, so
fill-mask never computes logits for the whole vocabulary at every position. The decoder's rows are padded to a
multiple of VOCAB_ALIGNMENT: cuBLAS runs a GEMM whose output rows are not 16-byte aligned (bert-base-cased's 28996
columns) on far slower kernels (benchmarks/NOTES.md); the logits are a view of the vocabulary's columns."""

from __future__ import annotations

import torch

from ..config import BertConfig
from ..errors import CheckpointError
from ..layers import LayerNorm, Linear, norm_args
from .base import Head, LastLayer, Rows

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
VOCAB_ALIGNMENT = 64


def padded_vocabulary(vocab_size: int) -> int:
    return -(-vocab_size // VOCAB_ALIGNMENT) * VOCAB_ALIGNMENT


def padded_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with zero rows appended up to ``rows`` (as it is when it has them)."""
    return torch.cat([t, t.new_zeros(rows - len(t), *t.shape[1:])]) if len(t) < rows else t


class MaskedLMHead(Head):
    name = "masked-lm"
    architecture = "ForMaskedLM"
    renames = (
        (r"(?:cls\.predictions\.transform|lm_head)\.dense\.(weight|bias)", r"head.transform.\1"),
        (r"(?:cls\.predictions\.transform\.LayerNorm|lm_head\.layer_norm)\.(weight|bias)", r"head.norm.\1"),
        (r"(?:cls\.predictions|lm_head)\.decoder\.(weight|bias)", r"head.decoder.\1"),
        (r"(?:cls\.predictions|lm_head)\.bias", r"head.bias"),
    )
    reads = frozenset({Rows.SELECTED})
    outputs = {"logits": Rows.SELECTED}

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = Linear(config.hidden_size, config.hidden_size)
        self.norm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.decoder = Linear(config.hidden_size, padded_vocabulary(config.vocab_size))
        self.vocab_size = config.vocab_size

    def widths(self):
        return {"logits": self.decoder.weight.shape[0]}

    def forward(self, last: LastLayer, ops) -> dict[str, torch.Tensor]:
        h = ops.linear(last.at(Rows.SELECTED), self.transform.weight, self.transform.bias, gelu=True,
                       norm=norm_args(self.norm))
        return {"logits": ops.linear(h, self.decoder.weight, self.decoder.bias)[..., : self.vocab_size]}  # [..., V]

    @staticmethod
    def converted(state, config):
        # The decoder's own bias is what transformers adds; the head-level one is its tied twin, saved alone when tied.
        head_bias = state.pop("head.bias", None)
        if head_bias is not None:
            state.setdefault("head.decoder.bias", head_bias)
        if config.tie_word_embeddings:
            state.pop("head.decoder.weight", None)  # as transformers does: the word embeddings serve
        return state

    @staticmethod
    def tied(tensors, config):
        """The decoder padded to an aligned vocabulary; tied, the word embeddings are a view of its first rows."""
        rows = padded_vocabulary(config.vocab_size)
        if "head.decoder.weight" not in tensors:
            if not config.tie_word_embeddings:
                raise CheckpointError("the MLM head has no decoder weight and tie_word_embeddings is false")
            if tensors.get(WORD_EMBEDDINGS) is not None:
                tensors["head.decoder.weight"] = padded_rows(tensors[WORD_EMBEDDINGS], rows)
                tensors[WORD_EMBEDDINGS] = tensors["head.decoder.weight"][: config.vocab_size]
        for name in ("head.decoder.weight", "head.decoder.bias"):
            if tensors.get(name) is not None:
                tensors[name] = padded_rows(tensors[name], rows)
        return tensors
