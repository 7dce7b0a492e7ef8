"""Validation of a forward pass's inputs, done before anything runs on the device.

A bad token id on the GPU would be a device-side assert that poisons the CUDA context; here it is
an InputError that names the problem.
"""

from __future__ import annotations

import torch

from .config import BertConfig
from .errors import InputError

INDEX_DTYPES = (torch.int64, torch.int32)


def as_index_tensor(name: str, value) -> torch.Tensor:
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    if t.dtype not in INDEX_DTYPES:
        raise InputError(f"{name} must hold integers (int64 or int32), got {t.dtype}")
    if t.dim() != 2:
        raise InputError(f"{name} must be shaped [batch, sequence], got shape {tuple(t.shape)}")
    return t


def _check_range(name: str, t: torch.Tensor, size: int, what: str) -> None:
    if t.device.type == "cpu":  # numpy's reductions cost a microsecond where torch's cost several
        values = t.numpy()
        low, high = int(values.min()), int(values.max())
    else:
        low, high = (v.item() for v in torch.aminmax(t))
    if low < 0:
        raise InputError(f"{name} holds {low}: negative ids are not valid")
    if high >= size:
        raise InputError(f"{name} holds {high}, outside the {what} of size {size} (valid ids: 0..{size - 1})")


def check_inputs(config: BertConfig, input_ids, attention_mask=None, token_type_ids=None, logits_at=None):
    """Returns (input_ids, attention_mask, token_type_ids, logits_at) as tensors, or raises InputError."""
    input_ids = as_index_tensor("input_ids", input_ids)
    batch, seq_len = input_ids.shape
    if batch == 0 or seq_len == 0:
        raise InputError(f"input_ids is empty (shape {tuple(input_ids.shape)})")
    if seq_len > config.max_sequence_length:
        raise InputError(
            f"sequence length {seq_len} exceeds the {config.max_sequence_length} positions of this {config.model_type} "
            f"model (max_position_embeddings={config.max_position_embeddings}); truncate the input"
        )
    _check_range("input_ids", input_ids, config.vocab_size, "vocabulary")
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask)
        if attention_mask.shape != input_ids.shape:
            raise InputError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids {tuple(input_ids.shape)}")
    if token_type_ids is not None:
        token_type_ids = as_index_tensor("token_type_ids", token_type_ids)
        if token_type_ids.shape != input_ids.shape:
            raise InputError(
                f"token_type_ids has shape {tuple(token_type_ids.shape)}, input_ids {tuple(input_ids.shape)}")
        _check_range("token_type_ids", token_type_ids, config.type_vocab_size, "token type table")
    if logits_at is not None:
        logits_at = torch.as_tensor(logits_at)
        if logits_at.dtype != torch.bool or logits_at.shape != input_ids.shape:
            raise InputError(
                f"logits_at must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}, "
                f"got {logits_at.dtype} {tuple(logits_at.shape)}"
            )
    return input_ids, attention_mask, token_type_ids, logits_at
