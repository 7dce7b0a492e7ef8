"""Bias add and exact (erf) GELU on the FFN-up GEMM output, as BERT defines its activation.

``fastbert.ops.linear`` uses it where cuBLASLt's GELU epilogue (the tanh form) does not run: fp32, and
the Triton interpreter; benchmarks/bench_ops.py measures both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .common import check_device, check_dtype, check_shape


@triton.jit
def gelu_erf(x):
    """Exact GELU of an fp32 tensor."""
    return 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))


@triton.jit
def _bias_gelu_kernel(x_ptr, bias_ptr, out_ptr, n_elements, n_cols, HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < n_elements
    x = tl.load(x_ptr + offs, mask=valid, other=0.0).to(tl.float32)
    if HAS_BIAS:
        x += tl.load(bias_ptr + offs % n_cols, mask=valid, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, gelu_erf(x).to(out_ptr.dtype.element_ty), mask=valid)


def bias_gelu(x, bias=None):
    """gelu(x + bias) over the last dimension of ``x``; ``bias`` may be None."""
    check_device(x, *(() if bias is None else (bias,)))
    check_dtype("x", x)
    if bias is not None:
        check_shape("bias", bias, (x.shape[-1],))
    x = x.contiguous()
    out = torch.empty_like(x)
    block = 1024
    _bias_gelu_kernel[(triton.cdiv(x.numel(), block),)](
        x, bias if bias is not None else x, out, x.numel(), x.shape[-1], HAS_BIAS=bias is not None, BLOCK=block,
        num_warps=4)
    return out


def bias_gelu_reference(x, bias=None):
    return F.gelu(x.float() + (bias.float() if bias is not None else 0.0)).to(x.dtype)
