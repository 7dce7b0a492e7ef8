"""LayerNorm fused with the bias and residual adds that precede it in a BERT layer.

y = LayerNorm(x + x_bias + residual) * weight + bias, statistics in fp32, one read of each input
and one write: the bias of the preceding GEMM and the skip connection cost no extra pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..errors import InputError
from .common import check_device, check_dtype, check_shape, row_warps
from .dependent_launch import launch_options, wait_for_producer


@triton.jit
def normalize_row(x, cols, valid, n_cols, eps, weight_ptr, bias_ptr):
    """LayerNorm of one fp32 row held in registers; entries outside ``valid`` must be 0 and stay out."""
    mean = tl.sum(x, axis=0) / n_cols
    centered = tl.where(valid, x - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centered * centered, axis=0) / n_cols + eps)
    weight = tl.load(weight_ptr + cols, mask=valid, other=0.0).to(tl.float32)
    bias = tl.load(bias_ptr + cols, mask=valid, other=0.0).to(tl.float32)
    return centered * rstd * weight + bias


@triton.jit
def _layer_norm_kernel(
    x_ptr, residual_ptr, x_bias_ptr, weight_ptr, bias_ptr, out_ptr,
    n_cols, eps, stride_part, stride_x, stride_residual, stride_out,
    HAS_RESIDUAL: tl.constexpr, HAS_X_BIAS: tl.constexpr, PARTS: tl.constexpr, BLOCK: tl.constexpr,
    DEPENDENT: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    valid = cols < n_cols
    wait_for_producer(DEPENDENT)
    x = tl.load(x_ptr + row * stride_x + cols, mask=valid, other=0.0).to(tl.float32)
    for part in tl.static_range(1, PARTS):  # partial sums of x, added in a fixed order
        x += tl.load(x_ptr + part * stride_part + row * stride_x + cols, mask=valid, other=0.0).to(tl.float32)
    if HAS_X_BIAS:
        x += tl.load(x_bias_ptr + cols, mask=valid, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        x += tl.load(residual_ptr + row * stride_residual + cols, mask=valid, other=0.0).to(tl.float32)
    y = normalize_row(x, cols, valid, n_cols, eps, weight_ptr, bias_ptr)
    tl.store(out_ptr + row * stride_out + cols, y.to(out_ptr.dtype.element_ty), mask=valid)


TWO_WARPS_FROM_ROWS = 2048


def _warps(block: int, rows: int, parts: int) -> int:
    """One warp per 256 columns; from TWO_WARPS_FROM_ROWS rows, two warps per row keep more rows in flight. Partial
    sums come from few rows and take one warp per 128 columns, as their loads are several per column.
    Measurements: benchmarks/NOTES.md, "Batch 32: where the time goes" and "Few-token layers"."""
    if parts > 1:
        return row_warps(block, per_warp=128, most=16)
    return 2 if rows >= TWO_WARPS_FROM_ROWS else row_warps(block)


def layer_norm(x, weight, bias, eps, *, residual=None, x_bias=None, parts=False, out_dtype=None):
    """LayerNorm over the last dimension of ``x + x_bias + residual``; returns a tensor shaped like ``x``, in
    ``out_dtype`` (default: x's). With ``parts``, ``x`` is [P, *shape]: P partial sums (fp32, say), added in
    order in fp32, whose total stands for x; the result is then [*shape]."""
    hidden = x.shape[-1]
    check_device(x, weight, bias, *(t for t in (residual, x_bias) if t is not None))
    check_dtype("x", x)
    check_shape("weight", weight, (hidden,))
    check_shape("bias", bias, (hidden,))
    if x_bias is not None:
        check_shape("x_bias", x_bias, (hidden,))
    parts_x = x if parts else x[None]
    shape = tuple(parts_x.shape[1:])
    if residual is not None:
        check_shape("residual", residual, shape)
    x3 = parts_x.reshape(len(parts_x), -1, hidden)
    res2 = residual.reshape(-1, hidden) if residual is not None else x3[0]
    if x3.stride(-1) != 1 or res2.stride(-1) != 1:
        raise InputError("layer_norm needs the hidden dimension of x and residual contiguous")
    out = torch.empty(shape, dtype=out_dtype or x.dtype, device=x.device)
    out2 = out.view(-1, hidden)
    block = triton.next_power_of_2(hidden)
    _layer_norm_kernel[(x3.shape[1],)](
        x3, res2, x_bias if x_bias is not None else bias, weight, bias, out2,
        hidden, eps, x3.stride(0), x3.stride(1), res2.stride(0), out2.stride(0),
        HAS_RESIDUAL=residual is not None, HAS_X_BIAS=x_bias is not None, PARTS=len(x3), BLOCK=block,
        num_warps=_warps(block, x3.shape[1], len(x3)), **launch_options(x.device, x3.shape[1]),
    )
    return out


def layer_norm_reference(x, weight, bias, eps, *, residual=None, x_bias=None, parts=False, out_dtype=None):
    h = x.float().sum(0) if parts else x.float()
    if x_bias is not None:
        h = h + x_bias.float()
    if residual is not None:
        h = h + residual.float()
    return F.layer_norm(h, (h.shape[-1],), weight.float(), bias.float(), eps).to(out_dtype or x.dtype)
