"""The masked-language-model head: transform (dense, GELU, LayerNorm), then the decoder over the vocabulary.

It reads the rows ``logits_at`` selects (fill-mask's mask tokens), or every token when nothing is selected, so
fill-mask never computes logits for the whole vocabulary at every position."""

from __future__ import annotations

import torch

from ..config import BertConfig
from ..errors import CheckpointError
from ..layers import LayerNorm, Linear, norm_args
from .base import Head, LastLayer, Rows

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


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
        self.decoder = Linear(config.hidden_size, config.vocab_size)

    def forward(self, last: LastLayer, ops) -> dict[str, torch.Tensor]:
        h = ops.linear(last.at(Rows.SELECTED), self.transform.weight, self.transform.bias, gelu=True,
                       norm=norm_args(self.norm))
        return {"logits": ops.linear(h, self.decoder.weight, self.decoder.bias)}              # [..., V]

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
        if "head.decoder.weight" not in tensors:
            if not config.tie_word_embeddings:
                raise CheckpointError("the MLM head has no decoder weight and tie_word_embeddings is false")
            tensors["head.decoder.weight"] = tensors.get(WORD_EMBEDDINGS)
        return tensors
