"""Validation of a forward pass's inputs, done before anything runs on the device.

Inputs on the host (lists, numpy arrays, CPU tensors) are checked and handed on as numpy arrays,
converted once: staging them for a CUDA graph and packing them is numpy work, and at batch 1 the
host time of a call is a good part of its latency. When ``input_ids`` is a tensor on an accelerator,
every input stays a tensor and is checked with torch. A bad token id on the GPU would be a
device-side assert that poisons the CUDA context; here it is an InputError that names the problem.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import BertConfig
from .errors import InputError

INDEX_DTYPES = (torch.int64, torch.int32)


def on_host(value) -> bool:
    return not (isinstance(value, torch.Tensor) and value.device.type != "cpu")


def as_array(value) -> np.ndarray:
    """A CPU tensor without a copy, any tensor or nested list as numpy."""
    return value.numpy(force=True) if isinstance(value, torch.Tensor) else np.asarray(value)


def _converted(name: str, value, convert):
    try:
        return convert(value)
    except (ValueError, TypeError, RuntimeError) as error:  # ragged lists, non-numbers
        raise InputError(f"{name} is not a [batch, sequence] array: {error}") from None


def _as_index(name: str, value, host: bool):
    if host:
        values = _converted(name, value, as_array)
        if values.dtype.kind not in "iu":
            raise InputError(f"{name} must hold integers, got {values.dtype}")
        if values.dtype not in (np.int64, np.int32):  # the index types torch and the kernels take
            values = values.astype(np.int64)
    else:
        values = _converted(name, value, torch.as_tensor)
        if values.dtype not in INDEX_DTYPES:
            raise InputError(f"{name} must hold integers (int64 or int32), got {values.dtype}")
    if values.ndim != 2:
        raise InputError(f"{name} must be shaped [batch, sequence], got shape {tuple(values.shape)}")
    return values


def _check_range(name: str, values, size: int, what: str) -> None:
    if isinstance(values, np.ndarray):  # numpy's reductions cost a microsecond where torch's cost several
        # one reduction on the host path: read as unsigned, a negative id wraps past any table size
        if int(values.view(f"u{values.itemsize}").max()) < size:
            return
        low, high = int(values.min()), int(values.max())
    else:
        low, high = (v.item() for v in torch.aminmax(values))
    if low < 0:
        raise InputError(f"{name} holds {low}: negative ids are not valid")
    if high >= size:
        raise InputError(f"{name} holds {high}, outside the {what} of size {size} (valid ids: 0..{size - 1})")


def _check_binary(name: str, values) -> None:
    """A mask holds 1 for tokens and 0 for padding. Other values have no one meaning: the kernels read the mask as
    int32, so 0.5 is padding there, while transformers attends wherever the mask is not 0."""
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        if kind not in "biuf":
            raise InputError(f"{name} must hold numbers, got {values.dtype}")
        if kind == "b":
            return
        if kind in "iu":  # one reduction, as in _check_range: read as unsigned, a negative value wraps past 1
            binary = int(values.view(f"u{values.itemsize}").max()) <= 1
        else:
            binary = bool(((values == 0) | (values == 1)).all())
    else:
        binary = values.dtype == torch.bool or bool(((values == 0) | (values == 1)).all())
    if not binary:
        other = values[(values != 0) & (values != 1)][0].item()
        raise InputError(f"{name} must hold only 1 (token) and 0 (padding), got {other}")


def check_inputs(config: BertConfig, input_ids, attention_mask=None, token_type_ids=None, logits_at=None):
    """Returns (input_ids, attention_mask, token_type_ids, logits_at), None where not given, as numpy arrays
    when ``input_ids`` is on the host and as tensors otherwise; or raises InputError."""
    host = on_host(input_ids)
    convert = as_array if host else torch.as_tensor
    input_ids = _as_index("input_ids", input_ids, host)
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
        attention_mask = _converted("attention_mask", attention_mask, convert)
        if attention_mask.shape != input_ids.shape:
            raise InputError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids {tuple(input_ids.shape)}")
        _check_binary("attention_mask", attention_mask)
    if token_type_ids is not None:
        token_type_ids = _as_index("token_type_ids", token_type_ids, host)
        if token_type_ids.shape != input_ids.shape:
            raise InputError(
                f"token_type_ids has shape {tuple(token_type_ids.shape)}, input_ids {tuple(input_ids.shape)}")
        _check_range("token_type_ids", token_type_ids, config.type_vocab_size, "token type table")
    if logits_at is not None:
        logits_at = _converted("logits_at", logits_at, convert)
        if logits_at.dtype not in (np.bool_, torch.bool) or logits_at.shape != input_ids.shape:
            raise InputError(
                f"logits_at must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}, "
                f"got {logits_at.dtype} {tuple(logits_at.shape)}"
            )
    return input_ids, attention_mask, token_type_ids, logits_at
