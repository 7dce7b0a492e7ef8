"""Inputs already on the GPU: checked with one kernel and one read back, and staged into a graph's padded input
buffer with one kernel, so that a call on device tensors costs no more host work than one on numpy arrays.

``input_stats`` reads ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``logits_at`` once and returns what
the checks need in one transfer: the id and token-type ranges, a mask value that is neither 0 nor 1, and how many
positions ``logits_at`` selects (the graph's bucket depends on it). Reading them back is the call's one sync; torch
reductions would take one per check. ``stage_padded`` writes the [B, S] inputs into a [batch bucket, sequence bucket]
buffer, padding with the pad id, mask 0 and token type 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from .common import check_device

BLOCK = 1024


class InputStats(NamedTuple):
    min_id: int
    max_id: int
    min_type: int        # 0 and 0 without token types
    max_type: int
    bad_mask_value: float | None  # a mask value other than 0 and 1, if any
    selected: int        # positions logits_at selects (0 without it)


@triton.jit
def _input_stats_kernel(ids_ptr, mask_ptr, types_ptr, at_ptr, stats_ptr, batch, seq_len,
                        ids_row, ids_col, mask_row, mask_col, types_row, types_col, at_row, at_col,
                        HAS_MASK: tl.constexpr, HAS_TYPES: tl.constexpr, HAS_AT: tl.constexpr, BLOCK: tl.constexpr):
    """One program over every position: [min id, max id, min type, max type, count of mask values not 0 or 1, one
    such value, selected count], as float64 (ids and counts are exact there)."""
    big = 2147483647
    min_id = tl.full([BLOCK], big, tl.int64)
    max_id = tl.full([BLOCK], -big, tl.int64)
    min_type = tl.full([BLOCK], big, tl.int64)
    max_type = tl.full([BLOCK], -big, tl.int64)
    bad_count = tl.zeros([BLOCK], tl.int32)
    bad_value = tl.zeros([BLOCK], tl.float64)
    selected = tl.zeros([BLOCK], tl.int32)
    for start in range(0, batch * seq_len, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        valid = offs < batch * seq_len
        row, col = offs // seq_len, offs % seq_len
        ids = tl.load(ids_ptr + row * ids_row + col * ids_col, mask=valid, other=0).to(tl.int64)
        min_id = tl.minimum(min_id, tl.where(valid, ids, big))
        max_id = tl.maximum(max_id, tl.where(valid, ids, -big))
        if HAS_TYPES:
            types = tl.load(types_ptr + row * types_row + col * types_col, mask=valid, other=0).to(tl.int64)
            min_type = tl.minimum(min_type, tl.where(valid, types, big))
            max_type = tl.maximum(max_type, tl.where(valid, types, -big))
        if HAS_MASK:
            mask = tl.load(mask_ptr + row * mask_row + col * mask_col, mask=valid, other=0).to(tl.float64)
            bad = valid & (mask != 0) & (mask != 1)
            bad_count += bad.to(tl.int32)
            bad_value = tl.where(bad, mask, bad_value)
        if HAS_AT:
            at = tl.load(at_ptr + row * at_row + col * at_col, mask=valid, other=0)
            selected += (valid & (at != 0)).to(tl.int32)
    tl.store(stats_ptr + 0, tl.min(min_id, 0).to(tl.float64))
    tl.store(stats_ptr + 1, tl.max(max_id, 0).to(tl.float64))
    tl.store(stats_ptr + 2, tl.min(min_type, 0).to(tl.float64))
    tl.store(stats_ptr + 3, tl.max(max_type, 0).to(tl.float64))
    tl.store(stats_ptr + 4, tl.sum(bad_count, 0).to(tl.float64))
    largest = tl.max(bad_value, 0)  # one offending value: the largest, or the smallest where all are negative
    tl.store(stats_ptr + 5, tl.where(largest != 0, largest, tl.min(bad_value, 0)))
    tl.store(stats_ptr + 6, tl.sum(selected, 0).to(tl.float64))


@triton.jit
def _stage_padded_kernel(ids_ptr, mask_ptr, types_ptr, out_ids_ptr, out_mask_ptr, out_types_ptr, batch, seq_len,
                         batch_b, seq_b, pad_id, ids_row, ids_col, mask_row, mask_col, types_row, types_col,
                         HAS_MASK: tl.constexpr, HAS_TYPES: tl.constexpr, BLOCK: tl.constexpr):
    """Each program fills BLOCK positions of the [batch_b, seq_b] int32 buffers."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < batch_b * seq_b
    row, col = offs // seq_b, offs % seq_b
    inside = live & (row < batch) & (col < seq_len)
    ids = tl.load(ids_ptr + row * ids_row + col * ids_col, mask=inside, other=pad_id)
    tl.store(out_ids_ptr + offs, ids.to(tl.int32), mask=live)
    if HAS_MASK:
        mask = tl.load(mask_ptr + row * mask_row + col * mask_col, mask=inside, other=0).to(tl.int32)
    else:
        mask = inside.to(tl.int32)
    tl.store(out_mask_ptr + offs, mask, mask=live)
    types = tl.zeros([BLOCK], tl.int32)
    if HAS_TYPES:
        types = tl.load(types_ptr + row * types_row + col * types_col, mask=inside, other=0).to(tl.int32)
    tl.store(out_types_ptr + offs, types, mask=live)


def stage_padded(buffers: dict, input_ids, attention_mask, token_type_ids, pad_id: int) -> None:
    """[B, S] device inputs into the [batch bucket, sequence bucket] int32 views ``ids``, ``mask`` and ``types``."""
    out_ids, out_mask, out_types = buffers["ids"], buffers["mask"], buffers["types"]
    check_device(input_ids, out_ids)
    batch, seq_len = input_ids.shape
    batch_b, seq_b = out_ids.shape
    mask = _bytes_view(attention_mask)
    _stage_padded_kernel[(triton.cdiv(batch_b * seq_b, BLOCK),)](
        input_ids, mask if mask is not None else input_ids,
        token_type_ids if token_type_ids is not None else input_ids, out_ids, out_mask, out_types,
        batch, seq_len, batch_b, seq_b, pad_id, *_strides(input_ids), *_strides(mask), *_strides(token_type_ids),
        HAS_MASK=mask is not None, HAS_TYPES=token_type_ids is not None, BLOCK=BLOCK, num_warps=4)


def stage_padded_reference(buffers: dict, input_ids, attention_mask, token_type_ids, pad_id: int) -> None:
    """The same writes as item assignments, which numpy arrays and tensors both take: how host inputs are staged in
    a graph's pinned buffer."""
    batch, seq_len = input_ids.shape
    buffers["ids"][...] = pad_id
    buffers["ids"][:batch, :seq_len] = input_ids
    buffers["mask"][...] = 0
    buffers["mask"][:batch, :seq_len] = attention_mask if attention_mask is not None else 1
    buffers["types"][...] = 0
    if token_type_ids is not None:
        buffers["types"][:batch, :seq_len] = token_type_ids


def _bytes_view(t: torch.Tensor | None) -> torch.Tensor | None:
    """Bool tensors as uint8, which Triton loads."""
    return t.view(torch.uint8) if t is not None and t.dtype == torch.bool else t


def _strides(t: torch.Tensor | None) -> tuple[int, int]:
    return (t.stride(0), t.stride(1)) if t is not None else (0, 0)


def input_stats(input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> InputStats:
    """What the checks of [B, S] device inputs need, read back in one transfer (the call's one sync)."""
    check_device(*(t for t in (input_ids, attention_mask, token_type_ids, logits_at) if t is not None))
    batch, seq_len = input_ids.shape
    mask, at = _bytes_view(attention_mask), _bytes_view(logits_at)
    stats = torch.empty(7, dtype=torch.float64, device=input_ids.device)
    _input_stats_kernel[(1,)](
        input_ids, mask if mask is not None else input_ids, token_type_ids if token_type_ids is not None else input_ids,
        at if at is not None else input_ids, stats, batch, seq_len, *_strides(input_ids), *_strides(mask),
        *_strides(token_type_ids), *_strides(at), HAS_MASK=mask is not None, HAS_TYPES=token_type_ids is not None,
        HAS_AT=at is not None, BLOCK=BLOCK, num_warps=4)
    min_id, max_id, min_type, max_type, bad_count, bad_value, selected = stats.tolist()
    if token_type_ids is None:
        min_type = max_type = 0
    return InputStats(int(min_id), int(max_id), int(min_type), int(max_type),
                      bad_value if bad_count else None, int(selected))


def input_stats_reference(input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> InputStats:
    ids = input_ids.long()
    types = token_type_ids.long() if token_type_ids is not None else torch.zeros(1, dtype=torch.long)
    bad_value = None
    if attention_mask is not None and attention_mask.dtype != torch.bool:
        bad = attention_mask[(attention_mask != 0) & (attention_mask != 1)].double()
        if len(bad):  # the one the kernel reports: the largest, or the smallest where all are negative
            bad_value = float(bad.max() if bad.max() > 0 else bad.min())
    return InputStats(int(ids.min()), int(ids.max()), int(types.min()), int(types.max()), bad_value,
                      int(logits_at.sum()) if logits_at is not None else 0)
