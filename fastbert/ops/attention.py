"""Fused bidirectional attention for the encoder, read straight from the fused QKV projection.

``qkv`` is the [B, S, 3H] output of the QKV GEMM: Q, K and V of head h are the column slices
[h*D, (h+1)*D) of its three thirds, so the kernel reads them through strides with no transpose or
copy, and writes the context as [B, S, H] ready for the output projection. Online softmax with fp32
running max and sum (flash attention); keys where ``key_mask`` is 0 are skipped, and a query
with no valid key at all (a fully padded row) gets zeros rather than NaN.

The packed form (``attention_packed``) takes [T, 3H] for the valid tokens of a batch concatenated
row by row (``fastbert.packing``) and their sequences' offsets: each program handles PACKED_TILE
query rows of one sequence and attends to that sequence's keys only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from triton.testing import do_bench_cudagraph

from ..errors import InputError
from .common import block_size, check_device, check_dtype, check_shape, collection_paused, dot_precision, interpreting
from .dependent_launch import chain_launch_options, wait_for_producer


@triton.jit
def _key_span(key_mask_ptr, seq_len, HAS_MASK: tl.constexpr, KEY_SPAN: tl.constexpr, BLOCK: tl.constexpr):
    """(first masked key, one past the last valid key) of a sequence: keys before the first are all valid, and
    none after the second is. Without a mask, or without ``KEY_SPAN`` (a pass over the mask that short or few
    sequences do not repay), both are ``seq_len`` and the caller tests every key against the mask."""
    first_masked = tl.zeros([], tl.int32) + seq_len
    end = tl.zeros([], tl.int32) + seq_len
    if HAS_MASK and KEY_SPAN:
        end = tl.zeros([], tl.int32)
        for start in range(0, seq_len, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            valid = tl.load(key_mask_ptr + offs, mask=offs < seq_len, other=0) != 0
            first_masked = tl.minimum(first_masked, tl.min(tl.where(valid | (offs >= seq_len), seq_len, offs), 0))
            end = tl.maximum(end, tl.max(tl.where(valid, offs + 1, 0), 0))
    return first_masked, end


@triton.jit
def _attend_block(
    q, k_ptr, v_ptr, key_mask_ptr, start_n, end, acc, row_max, row_sum, offs_d, d_valid, scale_log2, stride_qkv_s,
    MASKED: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr,
):
    """One block of keys into the running softmax. Unmasked blocks hold only valid keys: no key test, and the
    running max is finite after them. Masked blocks test each key (``end``, then the mask)."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    rows = offs_n[:, None] * stride_qkv_s + offs_d[None, :]
    if MASKED:
        key_valid = offs_n < end
        load_mask = key_valid[:, None] & d_valid[None, :]
        if HAS_MASK:
            key_valid &= tl.load(key_mask_ptr + offs_n, mask=key_valid, other=0) != 0
    else:
        load_mask = d_valid[None, :]
    scores = tl.dot(q, tl.trans(tl.load(k_ptr + rows, mask=load_mask, other=0.0)), input_precision=PRECISION)
    if MASKED:
        scores = tl.where(key_valid[None, :], scores, float("-inf"))
    # the scale is positive, so it applies after the max and folds into the exponent's multiply-add
    new_max = tl.maximum(row_max, tl.max(scores, axis=1) * scale_log2)
    if MASKED:  # rows that have seen no valid key yet keep -inf; subtract 0 there so exp2 gives 0, not NaN
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
    else:
        shift = new_max
    p = tl.exp2(scores * scale_log2 - shift[:, None])
    rescale = tl.exp2(row_max - shift)
    row_sum = row_sum * rescale + tl.sum(p, axis=1)
    v = tl.load(v_ptr + rows, mask=load_mask, other=0.0)
    acc = acc * rescale[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc, new_max, row_sum


@triton.jit
def context_rows(
    q_ptr, key_mask_ptr, first_row, seq_len, head_dim, hidden, scale_log2, stride_qkv_s,
    HAS_MASK: tl.constexpr, KEY_SPAN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr,
):
    """The fp32 [BLOCK_M, BLOCK_D] context of query rows first_row .. first_row + BLOCK_M of one head, attending
    to keys 0 .. seq_len of their sequence. ``q_ptr`` points at the sequence's first token and the head's first
    Q column; K and V sit a third and two thirds of the QKV row further. Whole blocks of valid keys run without
    per-key tests; with ``KEY_SPAN``, key blocks past the last valid key (a right-padded sequence's padding)
    are skipped."""
    k_ptr = q_ptr + hidden
    v_ptr = q_ptr + 2 * hidden
    offs_m = first_row + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_valid = offs_d < head_dim
    q = tl.load(q_ptr + offs_m[:, None] * stride_qkv_s + offs_d[None, :],
                mask=(offs_m[:, None] < seq_len) & d_valid[None, :], other=0.0)
    first_masked, end = _key_span(key_mask_ptr, seq_len, HAS_MASK=HAS_MASK, KEY_SPAN=KEY_SPAN, BLOCK=256)

    row_max = tl.full([BLOCK_M], float("-inf"), tl.float32)
    row_sum = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    unmasked_end = 0
    if KEY_SPAN or not HAS_MASK:  # else one loop only: a second costs short sequences a pipeline start-up
        unmasked_end = first_masked // BLOCK_N * BLOCK_N
        for start_n in range(0, unmasked_end, BLOCK_N):
            acc, row_max, row_sum = _attend_block(
                q, k_ptr, v_ptr, key_mask_ptr, start_n, end, acc, row_max, row_sum, offs_d, d_valid, scale_log2,
                stride_qkv_s, MASKED=False, HAS_MASK=HAS_MASK, BLOCK_N=BLOCK_N, PRECISION=PRECISION)
    for start_n in range(unmasked_end, end, BLOCK_N):
        acc, row_max, row_sum = _attend_block(
            q, k_ptr, v_ptr, key_mask_ptr, start_n, end, acc, row_max, row_sum, offs_d, d_valid, scale_log2,
            stride_qkv_s, MASKED=True, HAS_MASK=HAS_MASK, BLOCK_N=BLOCK_N, PRECISION=PRECISION)
    return acc / tl.where(row_sum == 0.0, 1.0, row_sum)[:, None]


@triton.jit
def _attend_rows(
    q_ptr, key_mask_ptr, out_ptr, first_row, seq_len, head_dim, hidden, scale_log2, stride_qkv_s, stride_out_s,
    HAS_MASK: tl.constexpr, KEY_SPAN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr,
):
    """``context_rows``, stored at ``out_ptr`` (the sequence's first token, the head's first column)."""
    context = context_rows(q_ptr, key_mask_ptr, first_row, seq_len, head_dim, hidden, scale_log2, stride_qkv_s,
                           HAS_MASK, KEY_SPAN, BLOCK_M, BLOCK_N, BLOCK_D, PRECISION)
    offs_m = first_row + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    tl.store(out_ptr + offs_m[:, None] * stride_out_s + offs_d[None, :], context.to(out_ptr.dtype.element_ty),
             mask=(offs_m[:, None] < seq_len) & (offs_d[None, :] < head_dim))


@triton.jit
def _attention_kernel(
    qkv_ptr, key_mask_ptr, out_ptr,
    seq_len, num_heads, head_dim, hidden, scale_log2,
    stride_qkv_b, stride_qkv_s, stride_out_b, stride_out_s, stride_mask_b,
    seq_bucket, batch_heads_bucket,  # autotune key only: tuned configs are shared by the shapes of one bucket
    KEY_SPAN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    PRECISION: tl.constexpr, DEPENDENT: tl.constexpr,
):
    wait_for_producer(DEPENDENT)
    batch = (tl.program_id(1) // num_heads).to(tl.int64)
    head = tl.program_id(1) % num_heads
    _attend_rows(qkv_ptr + batch * stride_qkv_b + head * head_dim, key_mask_ptr + batch * stride_mask_b,
                 out_ptr + batch * stride_out_b + head * head_dim, tl.program_id(0) * BLOCK_M,
                 seq_len, head_dim, hidden, scale_log2, stride_qkv_s, stride_out_s,
                 HAS_MASK=True, KEY_SPAN=KEY_SPAN, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
                 PRECISION=PRECISION)


@triton.jit
def _packed_attention_kernel(
    qkv_ptr, cu_seqlens_ptr, out_ptr,
    num_seqs, head_dim, hidden, scale_log2, stride_qkv_s, stride_out_s,
    tokens_bucket,  # autotune key only
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_B: tl.constexpr,
    PRECISION: tl.constexpr,
):
    # Program t takes the t-th tile of BLOCK_M query rows, counting each sequence's tiles in turn; programs past
    # the last tile find no sequence (length 0) and do nothing. The mapping is found here from cu_seqlens, so a
    # graph captured for a token count serves every split of those tokens into sequences.
    head = tl.program_id(0)
    tile = tl.program_id(1)
    seqs = tl.arange(0, BLOCK_B)
    starts = tl.load(cu_seqlens_ptr + seqs, mask=seqs < num_seqs, other=0)
    lengths = tl.load(cu_seqlens_ptr + seqs + 1, mask=seqs < num_seqs, other=0) - starts
    tiles = (lengths + BLOCK_M - 1) // BLOCK_M
    seq = tl.sum((tl.cumsum(tiles, 0) <= tile).to(tl.int32), 0)
    mine = seqs == seq
    start = tl.sum(tl.where(mine, starts, 0), 0).to(tl.int64)
    length = tl.sum(tl.where(mine, lengths, 0), 0)
    first_row = (tile - tl.sum(tl.where(seqs < seq, tiles, 0), 0)) * BLOCK_M
    _attend_rows(qkv_ptr + start * stride_qkv_s + head * head_dim, cu_seqlens_ptr,
                 out_ptr + start * stride_out_s + head * head_dim, first_row,
                 length, head_dim, hidden, scale_log2, stride_qkv_s, stride_out_s,
                 HAS_MASK=False, KEY_SPAN=False, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
                 PRECISION=PRECISION)


@triton.jit
def _rows_attention_kernel(
    qkv_ptr, rows_ptr, key_mask_ptr, cu_seqlens_ptr, out_ptr,
    seq_len, num_seqs, head_dim, hidden, scale_log2, stride_qkv_s, stride_out,
    PACKED: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_B: tl.constexpr, PRECISION: tl.constexpr, DEPENDENT: tl.constexpr,
):
    wait_for_producer(DEPENDENT)
    # Program (i, head) takes query row rows[i] of the token-flat qkv. Its sequence is the seq_len rows around it
    # (padded, keys masked), or the one whose cu_seqlens range holds it (packed).
    row = tl.load(rows_ptr + tl.program_id(0)).to(tl.int64)
    head = tl.program_id(1)
    if PACKED:
        seqs = tl.arange(0, BLOCK_B)
        ends = tl.load(cu_seqlens_ptr + seqs + 1, mask=seqs < num_seqs, other=0)
        seq = tl.sum(((ends <= row) & (seqs < num_seqs)).to(tl.int32), 0)
        start = tl.load(cu_seqlens_ptr + seq).to(tl.int64)
        length = tl.load(cu_seqlens_ptr + seq + 1) - start
    else:
        start = row // seq_len * seq_len
        length = seq_len
    # the row is the first of a QUERY_TILE whose others are not kept
    context = context_rows(qkv_ptr + start * stride_qkv_s + head * head_dim, key_mask_ptr + start, row - start,
                           length, head_dim, hidden, scale_log2, stride_qkv_s, HAS_MASK=not PACKED,
                           KEY_SPAN=not PACKED, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
                           PRECISION=PRECISION)
    first = tl.sum(tl.where(tl.arange(0, BLOCK_M)[:, None] == 0, context, 0.0), 0)
    offs_d = tl.arange(0, BLOCK_D)
    tl.store(out_ptr + tl.program_id(0) * stride_out + head * head_dim + offs_d, first.to(out_ptr.dtype.element_ty),
             mask=offs_d < head_dim)


def _graph_bench(fn, quantiles):
    """Tuning times a config in a CUDA graph, as the model runs it: triton's default (an L2 flush before each
    run, launches timed one by one) picks tiles that are slower in a graph (benchmarks/NOTES.md, "Attention:
    whole blocks of valid keys untested"). Picks are not cached on disk: one made while other processes shared
    the GPU would outlive them.
    The timed runs go to a stream of their own, unordered with the caller's: the caller's queued work must be
    done first, or they would write their output into memory that work has freed but not yet read."""
    torch.cuda.current_stream().synchronize()
    with collection_paused():
        return do_bench_cudagraph(fn, rep=10, quantiles=quantiles)


# (BLOCK_M, BLOCK_N, warps, stages); the key span pays only with tiles long enough to skip whole blocks
_TILES = [(16, 32, 4, 2), (32, 32, 4, 2), (64, 64, 4, 3), (128, 64, 4, 3), (64, 128, 4, 3)]
_TUNING_SPACE = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "KEY_SPAN": span}, num_warps=w, num_stages=s)
    for bm, bn, w, s in _TILES for span in ((False, True) if bm >= 64 else (False,))
]
_tuned_attention_kernel = triton.autotune(_TUNING_SPACE, key=["seq_bucket", "batch_heads_bucket", "head_dim"],
                                          do_bench=_graph_bench)(_attention_kernel)

PACKED_TILE = 64  # query rows per program of the packed kernel
QUERY_TILE = 16   # query rows per program where only a few are wanted: the smallest tile tl.dot takes
_PACKED_TUNING_SPACE = [
    triton.Config({"BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bn, w, s in [(32, 4, 2), (32, 4, 4), (64, 4, 3), (64, 4, 4)]
]
_tuned_packed_attention_kernel = triton.autotune(_PACKED_TUNING_SPACE, key=["tokens_bucket", "head_dim"],
                                                 do_bench=_graph_bench)(_packed_attention_kernel)


INTERPRETER_TILE = dict(BLOCK_M=32, BLOCK_N=32, KEY_SPAN=True)  # no tuning there: loops stay short


def softmax_scale_log2(head_dim: int) -> float:
    """The softmax scale 1/sqrt(head_dim) in base 2: the kernels exponentiate with exp2."""
    return math.log2(math.e) / math.sqrt(head_dim)


def check_padded(op: str, qkv, key_mask, num_heads):
    """(batch, seq_len, hidden, head_dim) of [B, S, 3H] ``qkv`` and its [B, S] ``key_mask``, checked as every
    op on padded batches needs them."""
    batch, seq_len, three_hidden = qkv.shape
    hidden = three_hidden // 3
    check_device(qkv, key_mask)
    check_dtype("qkv", qkv)
    check_shape("key_mask", key_mask, (batch, seq_len))
    if qkv.stride(-1) != 1 or key_mask.stride(-1) != 1:
        raise InputError(f"{op} needs qkv and key_mask contiguous in their last dimension")
    return batch, seq_len, hidden, hidden // num_heads


def attention(qkv, key_mask, num_heads, *, tile=None):
    """[B, S, 3H] fused projections and a [B, S] key mask (nonzero = attend) -> [B, S, H] context.
    ``tile``: a fixed kernel configuration (BLOCK_M, BLOCK_N, KEY_SPAN and optionally num_warps, num_stages)
    instead of the tuned one; the Triton interpreter uses INTERPRETER_TILE."""
    batch, seq_len, hidden, head_dim = check_padded("attention", qkv, key_mask, num_heads)
    out = torch.empty(batch, seq_len, hidden, dtype=qkv.dtype, device=qkv.device)
    args = (
        qkv, key_mask, out, seq_len, num_heads, head_dim, hidden, softmax_scale_log2(head_dim),
        qkv.stride(0), qkv.stride(1), out.stride(0), out.stride(1), key_mask.stride(0), triton.next_power_of_2(seq_len),
        triton.next_power_of_2(batch * num_heads),
    )
    meta = dict(BLOCK_D=block_size(head_dim), PRECISION=dot_precision(qkv.dtype),
                **chain_launch_options(qkv.device, batch * seq_len))
    tile = INTERPRETER_TILE if tile is None and interpreting() else tile
    if tile is not None:
        _attention_kernel[(triton.cdiv(seq_len, tile["BLOCK_M"]), batch * num_heads)](*args, **tile, **meta)
    else:
        grid = lambda cfg: (triton.cdiv(seq_len, cfg["BLOCK_M"]), batch * num_heads)  # noqa: E731
        _tuned_attention_kernel[grid](*args, **meta)
    return out


def attention_reference(qkv, key_mask, num_heads):
    batch, seq_len, three_hidden = qkv.shape
    hidden = three_hidden // 3
    q, k, v = (t.view(batch, seq_len, num_heads, hidden // num_heads).transpose(1, 2)
               for t in qkv.split(hidden, dim=-1))
    valid = key_mask.bool()[:, None, None, :]
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=valid)
    # a query with no valid key: zeros (SDPA would give NaN)
    context = torch.where(valid.any(dim=-1, keepdim=True), context, 0.0)
    return context.transpose(1, 2).reshape(batch, seq_len, hidden)


def _check_rows(qkv, rows) -> None:
    """Shape and type only: a range check would wait on the device."""
    check_device(qkv, rows)
    if rows.dim() != 1 or rows.dtype not in (torch.int32, torch.int64):
        raise InputError(f"rows must be a 1-D int32 or int64 tensor, got {rows.dtype} {tuple(rows.shape)}")


def _rows_attention(qkv, rows, key_mask, cu_seqlens, seq_len, num_heads):
    """Launches the rows kernel on token-flat [T, 3H] ``qkv``: padded (``key_mask`` [T], sequences of
    ``seq_len`` rows) or packed (``cu_seqlens``)."""
    hidden = qkv.shape[1] // 3
    head_dim = hidden // num_heads
    out = torch.empty(len(rows), hidden, dtype=qkv.dtype, device=qkv.device)
    packed = cu_seqlens is not None
    num_seqs = len(cu_seqlens) - 1 if packed else 1
    if len(rows):
        _rows_attention_kernel[(len(rows), num_heads)](
            qkv, rows, key_mask if not packed else rows, cu_seqlens if packed else rows, out,
            seq_len, num_seqs, head_dim, hidden, softmax_scale_log2(head_dim), qkv.stride(0), out.stride(0),
            PACKED=packed, BLOCK_M=QUERY_TILE, BLOCK_N=32 if interpreting() else 64, BLOCK_D=block_size(head_dim),
            BLOCK_B=block_size(num_seqs), PRECISION=dot_precision(qkv.dtype), num_warps=4, num_stages=2,
            **chain_launch_options(qkv.device, len(qkv)))
    return out


def attention_rows(qkv, key_mask, rows, num_heads):
    """``attention`` for some query rows only: [B, S, 3H] fused projections, a [B, S] key mask and ``rows``, flat
    indices into the B x S tokens (not range-checked) -> [N, H] context of those rows; every key still counts."""
    batch, seq_len, hidden, _ = check_padded("attention_rows", qkv, key_mask, num_heads)
    _check_rows(qkv, rows)
    return _rows_attention(qkv.reshape(batch * seq_len, 3 * hidden), rows, key_mask.reshape(-1), None, seq_len,
                           num_heads)


def attention_rows_reference(qkv, key_mask, rows, num_heads):
    batch, seq_len, three_hidden = qkv.shape
    context = attention_reference(qkv, key_mask, num_heads).reshape(batch * seq_len, three_hidden // 3)
    return context.index_select(0, rows)


def check_packed(op: str, qkv, cu_seqlens) -> None:
    check_device(qkv, cu_seqlens)
    check_dtype("qkv", qkv)
    if qkv.dim() != 2 or qkv.stride(-1) != 1 or not cu_seqlens.is_contiguous() or cu_seqlens.dtype != torch.int32:
        raise InputError(f"{op} needs [T, 3H] qkv contiguous in its last dimension and cu_seqlens contiguous int32")


def attention_packed(qkv, cu_seqlens, num_heads):
    """[T, 3H] fused projections of packed sequences -> [T, H] context. ``cu_seqlens`` [B + 1] int32: sequence b
    is tokens cu_seqlens[b] .. cu_seqlens[b + 1]. Tokens past cu_seqlens[-1] are left unwritten."""
    tokens, three_hidden = qkv.shape
    hidden = three_hidden // 3
    head_dim = hidden // num_heads
    num_seqs = len(cu_seqlens) - 1
    check_packed("attention_packed", qkv, cu_seqlens)
    out = torch.empty(tokens, hidden, dtype=qkv.dtype, device=qkv.device)
    args = (qkv, cu_seqlens, out, num_seqs, head_dim, hidden, softmax_scale_log2(head_dim),
            qkv.stride(0), out.stride(0), triton.next_power_of_2(tokens))
    meta = dict(BLOCK_M=PACKED_TILE, BLOCK_D=block_size(head_dim), BLOCK_B=block_size(num_seqs),
                PRECISION=dot_precision(qkv.dtype))
    grid = (num_heads, triton.cdiv(tokens, PACKED_TILE) + num_seqs)  # each sequence ends at most one partial tile
    if interpreting():
        _packed_attention_kernel[grid](*args, BLOCK_N=32, **meta)
    else:
        _tuned_packed_attention_kernel[grid](*args, **meta)
    return out


def attention_packed_reference(qkv, cu_seqlens, num_heads):
    """Block-diagonal attention over the whole [T, T]; tokens past ``cu_seqlens[-1]`` attend among themselves."""
    tokens, three_hidden = qkv.shape
    hidden = three_hidden // 3
    positions = torch.arange(tokens, dtype=cu_seqlens.dtype, device=qkv.device)
    sequence = torch.searchsorted(cu_seqlens[1:].contiguous(), positions, right=True)
    same_sequence = sequence[:, None] == sequence[None, :]
    q, k, v = (t.view(tokens, num_heads, hidden // num_heads).transpose(0, 1) for t in qkv.split(hidden, dim=-1))
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=same_sequence)
    return context.transpose(0, 1).reshape(tokens, hidden)


def attention_packed_rows(qkv, cu_seqlens, rows, num_heads):
    """``attention_packed`` for some query rows only: ``rows`` index the T packed tokens -> [N, H]."""
    check_packed("attention_packed_rows", qkv, cu_seqlens)
    _check_rows(qkv, rows)
    return _rows_attention(qkv, rows, None, cu_seqlens, 0, num_heads)


def attention_packed_rows_reference(qkv, cu_seqlens, rows, num_heads):
    return attention_packed_reference(qkv, cu_seqlens, num_heads).index_select(0, rows)
