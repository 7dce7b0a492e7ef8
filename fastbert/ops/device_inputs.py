"""Inputs already on the GPU, checked and staged by kernels that read them through a table of their addresses, so
that both kernels can sit inside CUDA graphs whatever tensors a call brings: a call writes the table into pinned
memory and replays, with no launch from Python (each costs more host time than a batch-1 replay, benchmarks/NOTES.md).

``input_stats`` reads ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``logits_at`` once and returns what
the checks need in one transfer: the id and token-type ranges, a mask value that is neither 0 nor 1, and how many
positions ``logits_at`` selects (the graph's bucket depends on it). Reading them back is the call's one sync; torch
reductions would take one per check. ``stage_padded`` writes the [B, S] inputs into a [batch bucket, sequence bucket]
buffer, padding with the pad id, mask 0 and token type 0, and the flat bucket positions ``logits_at`` selects, in
row-major order, into its rows. A kernel is compiled for the dtypes of the inputs it reads (``InputKinds``); the
table carries everything else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import triton
import triton.language as tl

from .common import check_device

BLOCK = 1024
# the table: the addresses of ids, mask, types and logits_at (one not given takes input_ids' place, never read),
# their (row, column) strides in that order, then batch and sequence length
BATCH_SLOT, SEQ_SLOT = tl.constexpr(12), tl.constexpr(13)
TABLE_SLOTS = 14
STATS = 7
TRITON_DTYPES = {torch.int64: tl.int64, torch.int32: tl.int32, torch.int16: tl.int16, torch.int8: tl.int8,
                 torch.uint8: tl.uint8, torch.bool: tl.uint8, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16,
                 torch.float32: tl.float32, torch.float64: tl.float64}


class InputStats(NamedTuple):
    min_id: int
    max_id: int
    min_type: int        # 0 and 0 without token types
    max_type: int
    bad_mask_value: float | None  # a mask value other than 0 and 1, if any
    selected: int        # positions logits_at selects (0 without it)

    @classmethod
    def read(cls, values, *, has_types: bool) -> InputStats:
        """From the STATS float64 values the stats kernel writes."""
        min_id, max_id, min_type, max_type, bad_count, bad_value, selected = (float(v) for v in values)
        if not has_types:
            min_type = max_type = 0
        return cls(int(min_id), int(max_id), int(min_type), int(max_type), bad_value if bad_count else None,
                   int(selected))


class InputKinds(NamedTuple):
    """What a kernel reading a table is compiled for: the dtype of each input, None where it is not given."""
    ids: torch.dtype
    mask: torch.dtype | None
    types: torch.dtype | None
    selects: bool  # whether logits_at is given

    @classmethod
    def of(cls, input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> InputKinds:
        return cls(input_ids.dtype, attention_mask.dtype if attention_mask is not None else None,
                   token_type_ids.dtype if token_type_ids is not None else None, logits_at is not None)

    def constexprs(self) -> dict:
        return dict(IDS_DT=TRITON_DTYPES[self.ids], MASK_DT=TRITON_DTYPES[self.mask or self.ids],
                    TYPES_DT=TRITON_DTYPES[self.types or self.ids], HAS_MASK=self.mask is not None,
                    HAS_TYPES=self.types is not None, HAS_AT=self.selects)


def fill_table(table, input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> None:
    """The addresses, strides and shape of [B, S] inputs into ``table``, a numpy array of TABLE_SLOTS int64."""
    batch, seq_len = input_ids.shape
    values = []
    for t in (input_ids, attention_mask, token_type_ids, logits_at):
        t = t if t is not None else input_ids
        values.append(t.data_ptr())
    for t in (input_ids, attention_mask, token_type_ids, logits_at):
        values += t.stride() if t is not None else (0, 0)
    table[:] = (*values, batch, seq_len)


@triton.jit
def _input(table_ptr, slot: tl.constexpr, DT: tl.constexpr):
    """Input ``slot``'s pointer and its (row, column) strides."""
    return (tl.load(table_ptr + slot).to(tl.pointer_type(DT)), tl.load(table_ptr + 4 + 2 * slot),
            tl.load(table_ptr + 5 + 2 * slot))


@triton.jit
def _input_stats_kernel(table_ptr, stats_ptr, IDS_DT: tl.constexpr, MASK_DT: tl.constexpr, TYPES_DT: tl.constexpr,
                        HAS_MASK: tl.constexpr, HAS_TYPES: tl.constexpr, HAS_AT: tl.constexpr, BLOCK: tl.constexpr):
    """One program over every position: [min id, max id, min type, max type, count of mask values not 0 or 1, one
    such value, selected count], as float64 (ids and counts are exact there)."""
    ids_ptr, ids_row, ids_col = _input(table_ptr, 0, IDS_DT)
    mask_ptr, mask_row, mask_col = _input(table_ptr, 1, MASK_DT)
    types_ptr, types_row, types_col = _input(table_ptr, 2, TYPES_DT)
    at_ptr, at_row, at_col = _input(table_ptr, 3, tl.uint8)
    batch, seq_len = tl.load(table_ptr + BATCH_SLOT), tl.load(table_ptr + SEQ_SLOT)
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
def _stage_padded_kernel(table_ptr, out_ids_ptr, out_mask_ptr, out_types_ptr, out_rows_ptr, batch_b, seq_b, rows_b,
                         pad_id, IDS_DT: tl.constexpr, MASK_DT: tl.constexpr, TYPES_DT: tl.constexpr,
                         HAS_MASK: tl.constexpr, HAS_TYPES: tl.constexpr, HAS_AT: tl.constexpr, BLOCK: tl.constexpr):
    """Each program fills BLOCK positions of the [batch_b, seq_b] int32 buffers; the first also the rows."""
    ids_ptr, ids_row, ids_col = _input(table_ptr, 0, IDS_DT)
    mask_ptr, mask_row, mask_col = _input(table_ptr, 1, MASK_DT)
    types_ptr, types_row, types_col = _input(table_ptr, 2, TYPES_DT)
    batch, seq_len = tl.load(table_ptr + BATCH_SLOT), tl.load(table_ptr + SEQ_SLOT)
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
    if HAS_AT:
        if tl.program_id(0) == 0:
            _stage_rows(table_ptr, out_rows_ptr, batch, seq_len, seq_b, rows_b, BLOCK)


@triton.jit
def _stage_rows(table_ptr, out_rows_ptr, batch, seq_len, seq_b, rows_b, BLOCK: tl.constexpr):
    """The [batch_b, seq_b] positions logits_at selects, in row-major order, into the first of ``rows_b`` rows."""
    at_ptr, row_stride, col_stride = _input(table_ptr, 3, tl.uint8)
    positions = batch * seq_len
    found = tl.sum(tl.zeros([BLOCK], tl.int32), 0)
    for start in range(0, positions, BLOCK):
        position = start + tl.arange(0, BLOCK)
        row, col = position // seq_len, position % seq_len
        at = tl.load(at_ptr + row * row_stride + col * col_stride, mask=position < positions, other=0)
        chosen = ((position < positions) & (at != 0)).to(tl.int32)
        index = found + tl.cumsum(chosen, 0) - 1
        tl.store(out_rows_ptr + index, (row * seq_b + col).to(tl.int32), mask=(chosen != 0) & (index < rows_b))
        found += tl.sum(chosen, 0)
    for start in range(0, rows_b, BLOCK):  # rows past the selection name token 0: read, never returned
        index = start + tl.arange(0, BLOCK)
        tl.store(out_rows_ptr + index, tl.zeros([BLOCK], tl.int32), mask=(index >= found) & (index < rows_b))


def launch_input_stats(table: torch.Tensor, stats: torch.Tensor, kinds: InputKinds) -> None:
    """The stats of the inputs ``table`` (a device tensor) points at into ``stats`` (STATS float64)."""
    _input_stats_kernel[(1,)](table, stats, **kinds.constexprs(), BLOCK=BLOCK, num_warps=4)


def launch_stage_padded(buffers: dict, table: torch.Tensor, kinds: InputKinds, pad_id: int) -> None:
    """The inputs ``table`` points at into the [batch bucket, sequence bucket] int32 views ``ids``, ``mask`` and
    ``types``, and with ``logits_at`` its flat bucket positions into ``rows``."""
    out_ids, rows = buffers["ids"], buffers["rows"]
    batch_b, seq_b = out_ids.shape
    _stage_padded_kernel[(triton.cdiv(batch_b * seq_b, BLOCK),)](
        table, out_ids, buffers["mask"], buffers["types"], rows, batch_b, seq_b, len(rows), pad_id,
        **kinds.constexprs(), BLOCK=BLOCK, num_warps=4)


def device_table(input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> torch.Tensor:
    """A table of these inputs on their device, for a launch outside a graph."""
    check_device(*(t for t in (input_ids, attention_mask, token_type_ids, logits_at) if t is not None))
    table = np.empty(TABLE_SLOTS, dtype=np.int64)
    fill_table(table, input_ids, attention_mask, token_type_ids, logits_at)
    return torch.from_numpy(table).to(input_ids.device)


def input_stats(input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> InputStats:
    """What the checks of [B, S] device inputs need, read back in one transfer (the call's one sync)."""
    table = device_table(input_ids, attention_mask, token_type_ids, logits_at)
    stats = torch.empty(STATS, dtype=torch.float64, device=input_ids.device)
    launch_input_stats(table, stats, InputKinds.of(input_ids, attention_mask, token_type_ids, logits_at))
    return InputStats.read(stats.tolist(), has_types=token_type_ids is not None)


def stage_padded(buffers: dict, input_ids, attention_mask, token_type_ids, logits_at, pad_id: int) -> None:
    """[B, S] device inputs into a padded buffer's device views (see ``launch_stage_padded``)."""
    table = device_table(input_ids, attention_mask, token_type_ids, logits_at)
    check_device(input_ids, buffers["ids"])
    launch_stage_padded(buffers, table, InputKinds.of(input_ids, attention_mask, token_type_ids, logits_at), pad_id)


def stage_padded_reference(buffers: dict, input_ids, attention_mask, token_type_ids, pad_id: int) -> None:
    """The same writes as item assignments, which numpy arrays and tensors both take: how host inputs are staged in
    a graph's pinned buffer (their rows by ``fastbert.staging``)."""
    batch, seq_len = input_ids.shape
    buffers["ids"][...] = pad_id
    buffers["ids"][:batch, :seq_len] = input_ids
    buffers["mask"][...] = 0
    buffers["mask"][:batch, :seq_len] = attention_mask if attention_mask is not None else 1
    buffers["types"][...] = 0
    if token_type_ids is not None:
        buffers["types"][:batch, :seq_len] = token_type_ids


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
