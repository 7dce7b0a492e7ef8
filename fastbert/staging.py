"""The inputs of one forward pass in one int32 buffer, so that they reach the device in one transfer.

A layout key names what a buffer holds: (PADDED, batch, seq_len, rows) for [B, S] inputs, or
(PACKED, batch, tokens, rows) for a packed batch (``fastbert.packing``); ``rows`` is the number of
rows ``logits_at`` selects, or NO_SELECTION. The CUDA-graph runner builds buffers for buckets and
fills them with smaller batches (padding masked out); the eager packed path builds them to size.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .ops import device_inputs
from .packing import PackedBatch

PADDED, PACKED = "padded", "packed"
NO_SELECTION = 0  # rows key: no logits_at


def rows_key(rows: int | None, bucket=lambda n: n) -> int:
    """The selection part of a key: NO_SELECTION (``rows`` None), or at least one row, bucketed."""
    return NO_SELECTION if rows is None else bucket(max(rows, 1))


def fields(key: tuple) -> dict[str, tuple[int, ...]]:
    kind, batch, size, rows = key
    if kind == PADDED:
        tensors = dict(ids=(batch, size), mask=(batch, size), types=(batch, size))
    else:
        tensors = dict(kept=(size,), ids=(size,), types=(size,), positions=(size,), cu_seqlens=(batch + 1,),
                       first=(batch,))
    return tensors | dict(rows=(rows,))


# int64 fields (index_copy_ takes no other index type), first in the buffer so that they stay 8-byte aligned
WIDE_FIELDS = ("kept",)


def _slots(name: str, shape: tuple[int, ...]) -> int:
    """int32 slots a field takes."""
    return math.prod(shape) * (2 if name in WIDE_FIELDS else 1)


def buffer_size(key: tuple) -> int:
    return sum(_slots(name, shape) for name, shape in fields(key).items())


def views(buffer, key: tuple) -> dict:
    """Named views into a flat int32 buffer (numpy array or tensor) laid out for ``key``."""
    named, offset = {}, 0
    for name, shape in fields(key).items():
        size = _slots(name, shape)
        view = buffer[offset:offset + size]
        if name in WIDE_FIELDS:
            view = view.view(np.int64) if isinstance(view, np.ndarray) else view.view(torch.int64)
        named[name] = view.reshape(shape)
        offset += size
    return named


def stage_padded(v: dict, input_ids, attention_mask, token_type_ids, logits_rows, pad_id: int) -> None:
    """[B, S] numpy inputs into a padded host buffer's views; ``logits_rows`` are flat indices into [B, S]. (Inputs on
    the GPU are staged by a kernel inside their graph: ``fastbert.ops.device_inputs``.)"""
    seq_b = v["ids"].shape[1]
    batch, seq_len = input_ids.shape
    device_inputs.stage_padded_reference(v, input_ids, attention_mask, token_type_ids, pad_id)
    if len(v["rows"]):
        v["rows"][...] = 0
        # flat indices are into [B, S]; the buffer's tokens are laid out [batch_b, seq_b]
        v["rows"][: len(logits_rows)] = logits_rows if seq_len == seq_b else (
            logits_rows // seq_len * seq_b + logits_rows % seq_len)


def stage_packed(v: dict, batch: PackedBatch, pad_id: int) -> None:
    """A packed batch into a packed buffer's views; tokens, sequences and rows past the batch's are inert."""
    tokens, rows = batch.tokens, len(batch.cu_seqlens) - 1
    for name, values, fill in (("ids", batch.input_ids, pad_id), ("types", batch.token_type_ids, 0),
                               ("positions", batch.position_ids, 0), ("kept", batch.kept, 0)):
        v[name][:tokens] = values
        v[name][tokens:] = fill
    v["cu_seqlens"][: rows + 1] = batch.cu_seqlens
    v["cu_seqlens"][rows + 1:] = tokens
    v["first"][:rows] = batch.first_tokens()
    v["first"][rows:] = 0
    if len(v["rows"]):
        v["rows"].fill(0)
        if batch.logits_rows is not None:
            v["rows"][: len(batch.logits_rows)] = batch.logits_rows

