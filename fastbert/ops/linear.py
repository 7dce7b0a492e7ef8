"""Linear layer with what follows it in BERT: y = LN(act(x @ W^T + b) + residual), every part optional.

The GEMM runs on cuBLAS through torch; what follows it is one fused Triton kernel (bias + residual +
LayerNorm, or bias + GELU). On the GPU in fp16/bf16 the bias + GELU rides in cuBLASLt's epilogue
instead: that saves a pass over the [tokens, intermediate] activation (8-10% of a batch-32 forward
on an H200). Its GELU is the tanh form, within 5e-4 of the erf form BERT defines, yet it lands
closer to exact fp32 GELU than GEMM + exact GELU does (max error 0.002 against 0.004), since it
acts before the fp16 rounding; fp32 keeps the exact form. A split-K Triton GEMM with these epilogues
fused, meant for batch-1 latency, measured slower than cuBLAS plus the epilogue kernel at every row
count on the H200 (benchmarks/NOTES.md), so cuBLAS runs everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from .common import check_device, check_dtype, check_shape
from .gelu import bias_gelu
from .layer_norm import layer_norm

GELU_EPILOGUE_DTYPES = (torch.float16, torch.bfloat16)


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
