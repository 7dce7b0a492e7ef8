"""Task heads, one file each, and how a checkpoint picks one.

Adding a head: a ``Head`` subclass in a file of its own (its parameters, the rows it reads, its named outputs and the
checkpoint names it takes), plus an entry in ``HEADS``.
"""

from __future__ import annotations

import re

from ..config import BertConfig
from ..errors import UnsupportedModelError
from .base import Head, LastLayer, Rows
from .masked_lm import MaskedLMHead
from .pooler import Pooler
from .sentence_embedding import SentenceEmbeddingHead
from .sequence_classification import SequenceClassificationHead
from .token_classification import TokenClassificationHead

HEADS: dict[str, type[Head]] = {head.name: head for head in (
    MaskedLMHead, SequenceClassificationHead, TokenClassificationHead)}
NO_HEAD = "none"  # the encoder alone (with its pooler where the checkpoint has one), as transformers' *Model
CHOICES = (*HEADS, NO_HEAD)

# transformers classes whose checkpoints carry a head this package also runs under another suffix
OTHER_ARCHITECTURES = {"ForPreTraining": MaskedLMHead.name, "Model": NO_HEAD}


def pick(config: BertConfig, tensor_names, requested: str | None = None) -> str:
    """The head to load: ``requested``, else the one config.json's ``architectures`` names, else the masked-LM head
    where the checkpoint has its tensors (``tensor_names``, with or without the model prefix), else none."""
    if requested is not None:
        if requested not in CHOICES:
            raise UnsupportedModelError(f"unknown head {requested!r}; choose one of {', '.join(CHOICES)}")
        return requested
    for architecture in config.architectures or ():
        for head in HEADS.values():
            if architecture.endswith(head.architecture):
                return head.name
        for suffix, name in OTHER_ARCHITECTURES.items():
            if architecture.endswith(suffix):
                return name
        raise UnsupportedModelError(
            f"architecture {architecture!r} has a head fastbert does not run; it runs *ForMaskedLM, "
            "*ForSequenceClassification, *ForTokenClassification and *Model checkpoints, or pass head='none' to load "
            "the encoder alone")
    if any(name.startswith("head.") or claims(MaskedLMHead, name) for name in tensor_names):
        return MaskedLMHead.name
    return NO_HEAD


def claims(head: type[Head], name: str) -> bool:
    return any(re.fullmatch(pattern, name) for pattern, _ in head.renames)


def architecture_name(config: BertConfig, head: str) -> str:
    """The transformers class name of this model type with this head, as config.json's ``architectures`` has it."""
    family = {"bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "camembert": "Camembert"}
    suffix = HEADS[head].architecture if head in HEADS else "Model"
    return family[config.model_type] + suffix


__all__ = ["CHOICES", "HEADS", "Head", "LastLayer", "NO_HEAD", "Pooler", "Rows", "SentenceEmbeddingHead",
           "architecture_name", "pick"]
