"""How many labels a classification head has: its output weight's rows, else its config's ``id2label``, else two
(transformers' default, so that a checkpoint lacking the weight is refused by name, not by an odd shape)."""

from __future__ import annotations

import torch

from ..config import BertConfig
from ..errors import CheckpointError

OUTPUT_WEIGHT = "head.out.weight"
DEFAULT_LABELS = 2


def label_count(config: BertConfig, state: dict[str, torch.Tensor]) -> int:
    weight = state.get(OUTPUT_WEIGHT)
    if weight is None:
        return len(config.id2label) if config.id2label is not None else DEFAULT_LABELS
    if config.id2label is not None and len(config.id2label) != weight.shape[0]:
        raise CheckpointError(f"config.json's id2label names {len(config.id2label)} labels, and the classifier "
                              f"outputs {weight.shape[0]}")
    return weight.shape[0]
