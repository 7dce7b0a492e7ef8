"""Row-wise softmax with an optional keep-mask, fp32 math, any row length.

Rows longer than one block (the MLM vocabulary: 29k-250k columns) are swept twice: an online
max/sum pass, then a normalizing pass. A row whose every entry is masked out gives zeros.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..errors import InputError
from .common import check_device, check_dtype, check_shape, row_warps


@triton.jit
def _kept_logits(x_row, mask_row, offs, n_cols, HAS_MASK: tl.constexpr):
    """A block of one row in fp32, -inf where masked out or past the end."""
    keep = offs < n_cols
    if HAS_MASK:
        keep &= tl.load(mask_row + offs, mask=offs < n_cols, other=0) != 0
    return tl.load(x_row + offs, mask=keep, other=float("-inf")).to(tl.float32)


@triton.jit
def _softmax_kernel(x_ptr, mask_ptr, out_ptr, n_cols, stride_x, stride_mask, stride_out,
                    HAS_MASK: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    mask_row = mask_ptr + row * stride_mask
    cols = tl.arange(0, BLOCK)
    running_max = tl.full([BLOCK], float("-inf"), tl.float32)
    running_sum = tl.zeros([BLOCK], tl.float32)
    for start in range(0, n_cols, BLOCK):
        x = _kept_logits(x_row, mask_row, start + cols, n_cols, HAS_MASK)
        new_max = tl.maximum(running_max, x)
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        running_sum = running_sum * tl.exp(running_max - shift) + tl.exp(x - shift)
        running_max = new_max
    row_max = tl.max(running_max, axis=0)
    shift = tl.where(row_max == float("-inf"), 0.0, row_max)
    row_sum = tl.sum(running_sum * tl.exp(running_max - shift), axis=0)
    inv_sum = tl.where(row_sum == 0.0, 0.0, 1.0 / row_sum)
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        x = _kept_logits(x_row, mask_row, offs, n_cols, HAS_MASK)
        tl.store(out_ptr + row * stride_out + offs, (tl.exp(x - shift) * inv_sum).to(out_ptr.dtype.element_ty),
                 mask=offs < n_cols)


def softmax(x, mask=None, *, out_dtype=None):
    """Softmax over the last dimension of a 2-D ``x``; entries where ``mask`` is 0 get probability 0."""
    check_device(x, *(() if mask is None else (mask,)))
    check_dtype("x", x)
    if x.dim() != 2 or x.stride(-1) != 1:
        raise InputError(f"softmax takes a 2-D tensor contiguous in its last dimension, got shape {tuple(x.shape)}")
    if mask is not None:
        check_shape("mask", mask, tuple(x.shape))
    out = torch.empty(x.shape, dtype=out_dtype or x.dtype, device=x.device)
    block = min(triton.next_power_of_2(x.shape[1]), 4096)
    mask_arg = mask if mask is not None else x
    _softmax_kernel[(x.shape[0],)](
        x, mask_arg, out, x.shape[1], x.stride(0), mask_arg.stride(0), out.stride(0),
        HAS_MASK=mask is not None, BLOCK=block, num_warps=row_warps(block, most=16),
    )
    return out


def softmax_reference(x, mask=None, *, out_dtype=None):
    logits = x.float()
    if mask is not None:
        logits = logits.masked_fill(mask == 0, float("-inf"))
    probs = torch.softmax(logits, dim=-1).nan_to_num(0.0)
    return probs.to(out_dtype or x.dtype)
