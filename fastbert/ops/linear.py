"""Linear layer with what follows it in BERT: y = LN(act(x @ W^T + b) + residual), every part optional.

Past a few rows the GEMM runs on cuBLAS through torch; what follows it is one fused Triton kernel (bias + residual
+ LayerNorm, or bias + GELU). On the GPU in fp16/bf16 the bias + GELU rides in cuBLASLt's epilogue instead, which
saves a pass over the [tokens, intermediate] activation. Its GELU is the tanh form, within 5e-4 of the erf form
BERT defines, yet closer to exact fp32 GELU than GEMM + exact GELU, since it acts before the rounding to fp16;
fp32 keeps the exact form.

Up to ``few_rows`` rows (``fastbert.tuning``) every GEMM but FFN-down's takes ``few_rows_linear``: one program
per tile of output columns holding every row, with the bias and the exact GELU in its epilogue (the LayerNorm,
when one follows, is the usual kernel). As the MLM decoder at fill-mask's [MASK] rows it streams the
vocabulary-wide weight faster than cuBLAS, which stays far below memory bandwidth at so few rows (its tiles widen
from WIDE_OUTPUT outputs). For the other GEMMs what sets the bound is the chain: with dependent launch
(``dependent_launch``), a layer made only of Triton kernels lets each one fetch its weights while its predecessor
runs, which a cuBLAS GEMM in the chain prevents.

From ``few_rows`` up to ``tiled_rows`` rows every GEMM takes ``tiled_linear`` (``ops/tiled_linear.py``), a tiled
kernel that launches as a dependent too, so that the chain holds at a few hundred tokens; where the tuning sets
``tiled_rows`` to 0, cuBLAS runs them. Into a LayerNorm, a GEMM of at least two ``tiled_k_slice`` inputs there
(FFN-down) splits K as below, since its few output tiles would leave SMs idle.

Up to ``split_k_rows`` rows, a deep GEMM into the LayerNorm (FFN-down at batch 1) takes ``split_k_linear``:
programs split over output columns and over K each store an fp32 partial product, and the LayerNorm kernel, which
runs anyway, adds them up in a fixed order with the bias and residual. cuBLAS splits K there too but reduces in a
kernel of its own; here that launch is gone, with no atomics, so results stay deterministic. Measurements:
benchmarks/NOTES.md, "Few-token layers" and "Dependent launch at few tokens".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..errors import InputError
from ..tuning import settings
from .common import block_size, check_device, check_dtype, check_shape, dot_precision, k_slice_width
from .dependent_launch import gemm_launch_options, prefetch_then_wait
from .gelu import bias_gelu, gelu_erf
from .layer_norm import layer_norm
from .tiled_linear import tiled_linear, tiled_split_k_linear

GELU_EPILOGUE_DTYPES = (torch.float16, torch.bfloat16)
WIDE_OUTPUT = 8192  # outputs from which few-row tiles widen: enough programs remain to keep every SM reading weights
K_SPLITS = 6        # slices of K in split_k_linear


@triton.jit
def _rows_times_weight(x_ptr, weight_ptr, rows, n, k_start, k_end, k, offs_n, stride_x, stride_w,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    """fp32 [BLOCK_M, BLOCK_N] product of every row of x with weight rows ``offs_n``, over inputs k_start .. k_end."""
    offs_m = tl.arange(0, BLOCK_M)
    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for start in range(k_start, k_end, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        w = tl.load(weight_ptr + offs_n[:, None].to(tl.int64) * stride_w + offs_k[None, :],
                    mask=(offs_n[:, None] < n) & (offs_k[None, :] < k), other=0.0)
        x = tl.load(x_ptr + offs_m[:, None] * stride_x + offs_k[None, :],
                    mask=(offs_m[:, None] < rows) & (offs_k[None, :] < k), other=0.0)
        acc = tl.dot(x, tl.trans(w), acc, input_precision=PRECISION)
    return acc


@triton.jit
def _few_rows_kernel(x_ptr, weight_ptr, bias_ptr, out_ptr, rows, n, k, stride_x, stride_w, stride_out,
                     HAS_BIAS: tl.constexpr, GELU: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_K: tl.constexpr, PRECISION: tl.constexpr, DEPENDENT: tl.constexpr,
                     PREFETCH: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    prefetch_then_wait(weight_ptr, offs_n, n, 0, k, stride_w, DEPENDENT, PREFETCH)
    acc = _rows_times_weight(x_ptr, weight_ptr, rows, n, 0, k, k, offs_n, stride_x, stride_w,
                             BLOCK_M, BLOCK_N, BLOCK_K, PRECISION)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=offs_n < n, other=0.0).to(tl.float32)[None, :]
    if GELU:
        acc = gelu_erf(acc)
    tl.store(out_ptr + offs_m[:, None] * stride_out + offs_n[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=(offs_m[:, None] < rows) & (offs_n[None, :] < n))


def _check_few_rows(op: str, x, weight, most: int) -> None:
    if len(x) > most:
        raise InputError(f"{op} takes at most {most} rows, got {len(x)}")
    if x.stride(-1) != 1 or weight.stride(-1) != 1:
        raise InputError(f"{op} needs x and weight contiguous in their last dimension")


def _few_rows_tiles(n: int, rows: int) -> tuple[int, int, int]:
    """(BLOCK_N, BLOCK_K, warps): the best of the sweeps in benchmarks/NOTES.md ("Few-row Triton GEMMs")."""
    if n >= WIDE_OUTPUT:
        return 128, 128, 4
    return (32, 256, 2) if rows <= 32 else (32, 128, 4)


def few_rows_linear(x, weight, bias=None, *, gelu=False):
    """act(x @ weight^T + bias) for [M, K] ``x`` of at most ``few_rows`` rows (``fastbert.tuning``); ``bias`` may
    be None, ``gelu`` is the exact (erf) GELU."""
    rows, k = x.shape
    n = weight.shape[0]
    check_device(x, weight, *(() if bias is None else (bias,)))
    _check_few_rows("few_rows_linear", x, weight, settings(x.device).few_rows)
    out = torch.empty(rows, n, dtype=x.dtype, device=x.device)
    block_n, block_k, warps = _few_rows_tiles(n, rows)
    _few_rows_kernel[(triton.cdiv(n, block_n),)](
        x, weight, bias if bias is not None else x, out, rows, n, k, x.stride(0), weight.stride(0), out.stride(0),
        HAS_BIAS=bias is not None, GELU=gelu, BLOCK_M=block_size(rows), BLOCK_N=block_n,
        BLOCK_K=block_k, PRECISION=dot_precision(x.dtype), num_warps=warps, num_stages=3,
        **gemm_launch_options(x, weight, k))
    return out


@triton.jit
def _split_k_kernel(x_ptr, weight_ptr, parts_ptr, rows, n, k, k_chunk, stride_x, stride_w, stride_part,
                    stride_parts_m, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                    PRECISION: tl.constexpr, DEPENDENT: tl.constexpr, PREFETCH: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    split = tl.program_id(1)
    offs_m = tl.arange(0, BLOCK_M)
    k_start, k_end = split * k_chunk, tl.minimum((split + 1) * k_chunk, k)
    prefetch_then_wait(weight_ptr, offs_n, n, k_start, k_end, stride_w, DEPENDENT, PREFETCH)
    acc = _rows_times_weight(x_ptr, weight_ptr, rows, n, k_start, k_end, k, offs_n, stride_x, stride_w,
                             BLOCK_M, BLOCK_N, BLOCK_K, PRECISION)
    tl.store(parts_ptr + split * stride_part + offs_m[:, None] * stride_parts_m + offs_n[None, :], acc,
             mask=(offs_m[:, None] < rows) & (offs_n[None, :] < n))


def split_k_linear(x, weight, splits=K_SPLITS):
    """[M, K] ``x`` of at most ``split_k_rows`` rows (``fastbert.tuning``) -> [P, M, N] fp32 partial products
    (P <= ``splits`` slices of K) whose sum is x @ weight^T; ``layer_norm(..., parts=True)`` adds them up."""
    rows, k = x.shape
    n = weight.shape[0]
    check_device(x, weight)
    _check_few_rows("split_k_linear", x, weight, settings(x.device).split_k_rows)
    block_n, block_k = 64, 128
    chunk = k_slice_width(k, splits, block_k)
    parts = torch.empty(triton.cdiv(k, chunk), rows, n, dtype=torch.float32, device=x.device)
    _split_k_kernel[(triton.cdiv(n, block_n), len(parts))](
        x, weight, parts, rows, n, k, chunk, x.stride(0), weight.stride(0), parts.stride(0), parts.stride(1),
        BLOCK_M=block_size(rows), BLOCK_N=block_n, BLOCK_K=block_k,
        PRECISION=dot_precision(x.dtype), num_warps=4, num_stages=3,
        **gemm_launch_options(x, weight, chunk))
    return parts


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
    contiguous = x2.stride(-1) == 1 and weight.stride(-1) == 1
    tuned = settings(x.device)
    into_norm = contiguous and norm is not None and not gelu
    if into_norm and len(x2) <= tuned.split_k_rows and k >= tuned.split_k_from:
        parts = split_k_linear(x2, weight)
    elif into_norm and tuned.few_rows < len(x2) <= tuned.tiled_rows and k >= 2 * tuned.tiled_k_slice:
        parts = tiled_split_k_linear(x2, weight, k // tuned.tiled_k_slice)
    else:
        parts = None
    if parts is not None:
        return layer_norm(parts, *norm, residual=residual, x_bias=bias, parts=True, out_dtype=x.dtype).view(*lead, n)
    if contiguous and len(x2) <= tuned.few_rows:
        y, bias = few_rows_linear(x2, weight, bias, gelu=gelu), None
    elif contiguous and len(x2) <= tuned.tiled_rows:
        y, bias = tiled_linear(x2, weight, bias, gelu=gelu), None
    elif residual is None and norm is None and not gelu:
        return F.linear(x2, weight, bias).view(*lead, n)
    elif gelu and bias is not None and x.is_cuda and x.dtype in GELU_EPILOGUE_DTYPES:
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
