"""Sentence-transformers' token pooling over each sequence: mean, mean over the square root of the length,
position-weighted mean, and max, in fp32.

Packed batches pool per sequence of ``cu_seqlens``: one program per sequence and block of columns walks its tokens,
so no padding is read and, with no atomics, results are deterministic. Padded batches pool under their mask in torch
(a few passes over [B, S, H] that the packed path exists to avoid). Both follow sentence-transformers' ``Pooling``:
position weights count from 1 at each sequence's first real token, and an empty sequence pools to zeros (its max
to -inf).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..errors import InputError
from .common import block_size, check_device, check_dtype

MODES = ("mean", "mean_sqrt_len_tokens", "weightedmean", "max")  # a kernel's MODE is the index of its mode here
MEAN, SQRT_LEN, WEIGHTED, MAX = (tl.constexpr(index) for index in range(len(MODES)))
TOKEN_TILE = 16


@triton.jit
def _pool_kernel(x_ptr, cu_seqlens_ptr, out_ptr, hidden, stride_x, stride_out, MODE: tl.constexpr,
                 BLOCK_T: tl.constexpr, BLOCK_H: tl.constexpr):
    seq = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    start = tl.load(cu_seqlens_ptr + seq)
    end = tl.load(cu_seqlens_ptr + seq + 1)
    if MODE == MAX:
        acc = tl.full([BLOCK_H], float("-inf"), tl.float32)
    else:
        acc = tl.zeros([BLOCK_H], tl.float32)
    for first in range(start, end, BLOCK_T):
        offs_t = first + tl.arange(0, BLOCK_T)
        keep = (offs_t[:, None] < end) & (cols[None, :] < hidden)
        x = tl.load(x_ptr + offs_t[:, None].to(tl.int64) * stride_x + cols[None, :], mask=keep,
                    other=float("-inf") if MODE == MAX else 0.0).to(tl.float32)
        if MODE == MAX:
            acc = tl.maximum(acc, tl.max(x, axis=0))
        elif MODE == WEIGHTED:
            acc += tl.sum(x * (offs_t - start + 1).to(tl.float32)[:, None], axis=0)
        else:
            acc += tl.sum(x, axis=0)
    length = (end - start).to(tl.float32)
    if MODE == MEAN:
        acc = acc / tl.maximum(length, 1.0)
    elif MODE == SQRT_LEN:
        acc = acc / tl.sqrt(tl.maximum(length, 1.0))
    elif MODE == WEIGHTED:
        acc = acc / tl.maximum(length * (length + 1.0) * 0.5, 1.0)
    tl.store(out_ptr + seq * stride_out + cols, acc, mask=cols < hidden)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"unknown pooling mode {mode!r}; token pooling modes are {', '.join(MODES)}")


def pool_packed(x, cu_seqlens, mode: str):
    """[T, H] packed token states -> [B, H] fp32, pooled per sequence b (tokens cu_seqlens[b] .. cu_seqlens[b + 1])
    by ``mode``. Tokens past cu_seqlens[-1] are not read."""
    check_device(x, cu_seqlens)
    check_dtype("x", x)
    if x.dim() != 2 or x.stride(-1) != 1 or cu_seqlens.dtype != torch.int32 or cu_seqlens.dim() != 1:
        raise InputError("pool_packed needs [T, H] x contiguous in its last dimension and 1-D int32 cu_seqlens")
    _check_mode(mode)
    hidden = x.shape[1]
    out = torch.empty(len(cu_seqlens) - 1, hidden, dtype=torch.float32, device=x.device)
    block_h = min(block_size(hidden), 256)
    _pool_kernel[(len(out), triton.cdiv(hidden, block_h))](
        x, cu_seqlens, out, hidden, x.stride(0), out.stride(0), MODE=MODES.index(mode), BLOCK_T=TOKEN_TILE,
        BLOCK_H=block_h)
    return out


def pool_packed_reference(x, cu_seqlens, mode: str):
    """Scatter-adds over each token's sequence index; graph-capturable (no data-dependent shapes)."""
    _check_mode(mode)
    tokens, hidden = x.shape
    num_seqs = len(cu_seqlens) - 1
    positions = torch.arange(tokens, dtype=cu_seqlens.dtype, device=x.device)
    # tokens past cu_seqlens[-1] land in an extra sequence, dropped at the end
    sequence = torch.searchsorted(cu_seqlens[1:].contiguous(), positions, right=True)
    x = x.float()
    if mode == "max":
        out = x.new_full((num_seqs + 1, hidden), float("-inf"))
        return out.scatter_reduce(0, sequence[:, None].expand(-1, hidden), x, reduce="amax")[:num_seqs]
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).float()
    weights = torch.ones(tokens, device=x.device)
    if mode == "weightedmean":
        weights = (positions - cu_seqlens[sequence.clamp(max=num_seqs - 1)] + 1).float()
        lengths = lengths * (lengths + 1) / 2
    sums = x.new_zeros(num_seqs + 1, hidden).index_add_(0, sequence, x * weights[:, None])[:num_seqs]
    return sums / _denominator(lengths, mode)[:, None]


def _denominator(weight_sums, mode: str):
    weight_sums = weight_sums.clamp(min=1e-9)
    return weight_sums.sqrt() if mode == "mean_sqrt_len_tokens" else weight_sums


def pool_padded(x, key_mask, mode: str):
    """[B, S, H] token states, [B, S] key mask (1: a real token) -> [B, H] fp32, pooled by ``mode`` over the real
    tokens; position weights count from each row's first real token."""
    _check_mode(mode)
    x = x.float()
    mask = key_mask.to(torch.float32)[..., None]                                                  # [B, S, 1]
    if mode == "max":
        return x.masked_fill(mask == 0, float("-inf")).amax(dim=1)
    if mode == "weightedmean":
        first = key_mask.to(torch.int32).argmax(dim=1)                                            # [B]
        positions = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=torch.float32)
        mask = mask * (positions[None, :] - first[:, None])[..., None]
    return (x * mask).sum(dim=1) / _denominator(mask.sum(dim=1), mode)
