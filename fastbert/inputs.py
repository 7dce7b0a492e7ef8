"""Validation of a forward pass's inputs, done before anything runs on the device.

Inputs on the host (lists, numpy arrays, CPU tensors) are checked and handed on as numpy arrays,
converted once: staging them for a CUDA graph and packing them is numpy work, and at batch 1 the
host time of a call is a good part of its latency. When ``input_ids`` is a tensor on an accelerator,
every input stays a tensor, and one kernel reads what the value checks need back in one transfer
(``fastbert.ops.device_inputs``): one sync per call rather than one per check. A bad token id on the GPU would be a
device-side assert that poisons the CUDA context; here it is an InputError that names the problem.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .config import BertConfig
from .errors import InputError
from .ops.device_inputs import input_stats

INDEX_DTYPES = (torch.int64, torch.int32)
# the mask dtypes the device check reads (complex and quantized ones have no 0/1 meaning)
DEVICE_MASK_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
                      torch.bfloat16, torch.float32, torch.float64)


class CheckedInputs(NamedTuple):
    """A forward pass's inputs, checked: numpy arrays when ``input_ids`` came from the host, else tensors."""
    input_ids: np.ndarray | torch.Tensor
    attention_mask: np.ndarray | torch.Tensor | None
    token_type_ids: np.ndarray | torch.Tensor | None
    logits_at: np.ndarray | torch.Tensor | None
    selected: int | None  # how many positions logits_at selects


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


def _check_bounds(name: str, low: int, high: int, size: int, what: str) -> None:
    if low < 0:
        raise InputError(f"{name} holds {low}: negative ids are not valid")
    if high >= size:
        raise InputError(f"{name} holds {high}, outside the {what} of size {size} (valid ids: 0..{size - 1})")


def _check_range(name: str, values: np.ndarray, size: int, what: str) -> None:
    # numpy's reductions cost a microsecond where torch's cost several; one reduction when all is well: read as
    # unsigned, a negative id wraps past any table size
    if int(values.view(f"u{values.itemsize}").max()) >= size:
        _check_bounds(name, int(values.min()), int(values.max()), size, what)


def _not_binary(name: str, other) -> InputError:
    """A mask holds 1 for tokens and 0 for padding. Other values have no one meaning: the kernels read the mask as
    int32, so 0.5 is padding there, while transformers attends wherever the mask is not 0."""
    return InputError(f"{name} must hold only 1 (token) and 0 (padding), got {other}")


def _check_binary(name: str, values: np.ndarray) -> None:
    kind = values.dtype.kind
    if kind not in "biuf":
        raise InputError(f"{name} must hold numbers, got {values.dtype}")
    if kind == "b":
        return
    if kind in "iu":  # one reduction, as in _check_range: read as unsigned, a negative value wraps past 1
        binary = int(values.view(f"u{values.itemsize}").max()) <= 1
    else:
        binary = bool(((values == 0) | (values == 1)).all())
    if not binary:
        raise _not_binary(name, values[(values != 0) & (values != 1)][0].item())


def _check_host_values(config: BertConfig, input_ids, attention_mask, token_type_ids, logits_at) -> int:
    """The value checks of host inputs; returns how many positions logits_at selects."""
    _check_range("input_ids", input_ids, config.vocab_size, "vocabulary")
    if attention_mask is not None:
        _check_binary("attention_mask", attention_mask)
    if token_type_ids is not None:
        _check_range("token_type_ids", token_type_ids, config.type_vocab_size, "token type table")
    return int(np.count_nonzero(logits_at)) if logits_at is not None else 0


def _check_device_values(config: BertConfig, input_ids, attention_mask, token_type_ids, logits_at, stats_of) -> int:
    """The value checks of device inputs from one read back by ``stats_of`` (``input_stats`` or the same from a
    graph); returns how many positions logits_at selects."""
    if attention_mask is not None and attention_mask.dtype not in DEVICE_MASK_DTYPES:
        raise InputError(f"attention_mask must hold real numbers, got {attention_mask.dtype}")
    stats = stats_of(input_ids, attention_mask, token_type_ids, logits_at)
    _check_bounds("input_ids", stats.min_id, stats.max_id, config.vocab_size, "vocabulary")
    if stats.bad_mask_value is not None:
        raise _not_binary("attention_mask", stats.bad_mask_value)
    if token_type_ids is not None:
        _check_bounds("token_type_ids", stats.min_type, stats.max_type, config.type_vocab_size, "token type table")
    return stats.selected


def check_inputs(config: BertConfig, input_ids, attention_mask=None, token_type_ids=None, logits_at=None, *,
                 device_stats=None) -> CheckedInputs:
    """The inputs checked, None where not given; or raises InputError. ``device_stats``: what reads the stats of
    device inputs (default ``input_stats``)."""
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
    if attention_mask is not None:
        attention_mask = _converted("attention_mask", attention_mask, convert)
        if attention_mask.shape != input_ids.shape:
            raise InputError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids {tuple(input_ids.shape)}")
    if token_type_ids is not None:
        token_type_ids = _as_index("token_type_ids", token_type_ids, host)
        if token_type_ids.shape != input_ids.shape:
            raise InputError(
                f"token_type_ids has shape {tuple(token_type_ids.shape)}, input_ids {tuple(input_ids.shape)}")
    if logits_at is not None:
        logits_at = _converted("logits_at", logits_at, convert)
        if logits_at.dtype not in (np.bool_, torch.bool) or logits_at.shape != input_ids.shape:
            raise InputError(
                f"logits_at must be a bool tensor shaped like input_ids {tuple(input_ids.shape)}, "
                f"got {logits_at.dtype} {tuple(logits_at.shape)}"
            )
    if host:
        selected = _check_host_values(config, input_ids, attention_mask, token_type_ids, logits_at)
    else:
        selected = _check_device_values(config, input_ids, attention_mask, token_type_ids, logits_at,
                                        device_stats or input_stats)
    return CheckedInputs(input_ids, attention_mask, token_type_ids, logits_at,
                         selected if logits_at is not None else None)
