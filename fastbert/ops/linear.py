"""Linear layer with what follows it in BERT: y = LN(act(x @ W^T + b) + residual), every part optional.

The GEMM runs on cuBLAS through torch; what follows it is one fused Triton kernel (bias + residual +
LayerNorm, or bias + GELU). On the GPU in fp16/bf16 the bias + GELU rides in cuBLASLt's epilogue
instead: that saves a pass over the [tokens, intermediate] activation (8-10% of a batch-32 forward
on an H200). Its GELU is the tanh form, within 5e-4 of the erf form BERT defines, yet it lands
closer to exact fp32 GELU than GEMM + exact GELU does (max error 0.002 against 0.004), since it
acts before the fp16 rounding; fp32 keeps the exact form. A split-K Triton GEMM with these epilogues
fused, meant for batch-1 latency, measured slower than cuBLAS plus the epilogue kernel at every row
count on the H200 (benchmarks/NOTES.md), so cuBLAS runs these GEMMs.

One shape is an exception: a few rows into a wide output with nothing after, as the MLM decoder over the
vocabulary at fill-mask's [MASK] rows. cuBLAS reads the weight there at a third of the memory bandwidth (19 µs
for 1 x 768 -> 28996 on the H200); ``few_rows_linear``, one program per 128 output columns holding every row,
takes 9 µs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..errors import InputError
from .common import check_device, check_dtype, check_shape, dot_precision
from .gelu import bias_gelu
from .layer_norm import layer_norm

GELU_EPILOGUE_DTYPES = (torch.float16, torch.bfloat16)
FEW_ROWS = 16        # few_rows_linear takes at most this many rows ...
WIDE_OUTPUT = 8192   # ... into at least this many outputs: enough programs to keep every SM reading weights


@triton.jit
def _few_rows_kernel(x_ptr, weight_ptr, bias_ptr, out_ptr, rows, n, k, stride_x, stride_w, stride_out,
                     HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     PRECISION: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for start in range(0, k, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + offs_m[:, None] * stride_x + offs_k[None, :],
                    mask=(offs_m[:, None] < rows) & (offs_k[None, :] < k), other=0.0)
        w = tl.load(weight_ptr + offs_n[:, None].to(tl.int64) * stride_w + offs_k[None, :],
                    mask=(offs_n[:, None] < n) & (offs_k[None, :] < k), other=0.0)
        acc = tl.dot(x, tl.trans(w), acc, input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=offs_n < n, other=0.0).to(tl.float32)[None, :]
    tl.store(out_ptr + offs_m[:, None] * stride_out + offs_n[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=(offs_m[:, None] < rows) & (offs_n[None, :] < n))


def few_rows_linear(x, weight, bias=None):
    """x @ weight^T + bias for [M, K] ``x`` of at most FEW_ROWS rows; ``bias`` may be None."""
    rows, k = x.shape
    n = weight.shape[0]
    check_device(x, weight, *(() if bias is None else (bias,)))
    if rows > FEW_ROWS:
        raise InputError(f"few_rows_linear takes at most {FEW_ROWS} rows, got {rows}")
    if x.stride(-1) != 1 or weight.stride(-1) != 1:
        raise InputError("few_rows_linear needs x and weight contiguous in their last dimension")
    out = torch.empty(rows, n, dtype=x.dtype, device=x.device)
    block_n = 128
    _few_rows_kernel[(triton.cdiv(n, block_n),)](
        x, weight, bias if bias is not None else x, out, rows, n, k, x.stride(0), weight.stride(0), out.stride(0),
        HAS_BIAS=bias is not None, BLOCK_M=FEW_ROWS, BLOCK_N=block_n, BLOCK_K=128, PRECISION=dot_precision(x.dtype),
        num_warps=4, num_stages=3)
    return out


def linear(x, weight, bias=None, *, gelu=False, residual=None, norm=None):
    """LN(act(x @ weight^T + bias) + residual) over the last dimension of ``x``.

    ``norm`` is (weight, bias, eps) of the LayerNorm; ``gelu`` is GELU (see the module docstring).
    """
    n, k = weight.shape
    check_device(x, weight)
    check_dtype("x", x)
    if x.shape[-1] != k:
        raise InputError(f"x has {x.shape[-1]} features; weight expects {k}")
    if bias is not None:
        check_shape("bias", bias, (n,))
    lead = x.shape[:-1]
    x2 = x.reshape(-1, k)
    residual = residual.reshape(-1, n) if residual is not None else None
    if not gelu and residual is None and norm is None:
        if len(x2) <= FEW_ROWS and n >= WIDE_OUTPUT and x2.stride(-1) == 1 and weight.stride(-1) == 1:
            return few_rows_linear(x2, weight, bias).view(*lead, n)
        return F.linear(x2, weight, bias).view(*lead, n)
    if gelu and bias is not None and x.is_cuda and x.dtype in GELU_EPILOGUE_DTYPES:
        y, bias = torch._addmm_activation(bias, x2, weight.t(), use_gelu=True), None
    else:
        y = F.linear(x2, weight)
        if gelu:
            y, bias = bias_gelu(y, bias), None
    if norm is not None:
        y = layer_norm(y, *norm, residual=residual, x_bias=bias)
    else:
        y = y if bias is None else y + bias
        y = y if residual is None else y + residual
    return y.view(*lead, n)


def linear_reference(x, weight, bias=None, *, gelu=False, residual=None, norm=None):
    y = F.linear(x.float(), weight.float(), bias.float() if bias is not None else None)
    if gelu:
        y = F.gelu(y)
    if residual is not None:
        y = y + residual.float()
    if norm is not None:
        norm_w, norm_b, eps = norm
        y = F.layer_norm(y, (y.shape[-1],), norm_w.float(), norm_b.float(), eps)
    return y.to(x.dtype)
