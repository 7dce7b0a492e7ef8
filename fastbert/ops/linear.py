"""Linear layer with everything that follows it in BERT fused in: y = LN(act(x @ W^T + b) + residual).

Two implementations behind one call, chosen by the number of rows:
- few rows (batch-1 latency): one Triton kernel, split over N and K so that several hundred
  programs each load one weight tile in a single shot, before waiting on the previous kernel
  (programmatic dependent launch): the weight stream overlaps the kernel before. Partial products
  go to an fp32 scratch; the last program to finish a column tile (an atomic ticket) sums them in a
  fixed order and applies bias, GELU and residual; for the LayerNorm, the last program to finish a
  row block normalizes those rows. One launch, deterministic, where cuBLAS needs two or three.
- many rows: cuBLAS through torch for the GEMM, then one fused Triton kernel for what follows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..errors import InputError
from .common import check_device, check_dtype, check_shape, dot_precision, pdl_launch_args, use_pdl
from .gelu import bias_gelu
from .layer_norm import layer_norm

FUSED_MAX_ROWS = 128  # at or below this many rows the split-K fused kernel runs; above it, cuBLAS
TARGET_PROGRAMS = 264  # two per multiprocessor on an H100/H200: enough loads in flight to stream weights


@triton.jit
def _gelu(x):
    return 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))


@triton.jit
def _last_to_arrive(counter_ptr, expected):
    """Ticket on a counter; True for the program that completes it, which also re-arms it at zero.
    The barrier orders this program's earlier stores before its release; acq_rel makes every other
    program's stores visible to the last one."""
    tl.debug_barrier()
    ticket = tl.atomic_add(counter_ptr, 1, sem="acq_rel")
    last = ticket == expected - 1
    if last:
        tl.atomic_xchg(counter_ptr, 0)
    return last


@triton.jit
def _linear_kernel(
    x_ptr, w_ptr, bias_ptr, residual_ptr, out_ptr, norm_w_ptr, norm_b_ptr, partial_ptr, sums_ptr, counters_ptr,
    M, N, K, eps, stride_x, stride_residual, stride_out,
    HAS_BIAS: tl.constexpr, GELU: tl.constexpr, HAS_RESIDUAL: tl.constexpr, NORM: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_NORM: tl.constexpr,
    NORM_ROWS: tl.constexpr, PDL: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    n_tiles = tl.num_programs(0)
    k_splits = tl.num_programs(1)
    if PDL:  # the next kernel may launch now; it waits for this one before touching activations
        tl.extra.cuda.gdc_launch_dependents()
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    n_valid = offs_n < N
    k_valid = offs_k < K
    # the weight tile does not depend on earlier kernels: it streams in before the wait
    w = tl.load(w_ptr + offs_n.to(tl.int64)[:, None] * K + offs_k[None, :], mask=n_valid[:, None] & k_valid[None, :],
                other=0.0)
    if PDL:
        tl.extra.cuda.gdc_wait()

    # 1. this program's partial product, for all M rows, into partial[pid_k]
    rows = tl.arange(0, BLOCK_M)
    partial_tile = partial_ptr + pid_k.to(tl.int64) * M * N + offs_n[None, :]
    for m0 in range(0, M, BLOCK_M):
        offs_m = m0 + rows
        m_valid = offs_m < M
        x = tl.load(x_ptr + offs_m.to(tl.int64)[:, None] * stride_x + offs_k[None, :],
                    mask=m_valid[:, None] & k_valid[None, :], other=0.0)
        acc = tl.dot(x, tl.trans(w), input_precision=PRECISION)
        tl.store(partial_tile + offs_m.to(tl.int64)[:, None] * N, acc, mask=m_valid[:, None] & n_valid[None, :])

    # 2. the last K split of this column tile sums the partials and applies bias, GELU, residual
    if _last_to_arrive(counters_ptr + pid_n, k_splits):
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_n, mask=n_valid, other=0.0).to(tl.float32)
        m_blocks = tl.cdiv(M, BLOCK_M)
        for i in range(0, m_blocks):
            block = (i + pid_n) % m_blocks  # column tiles visit row blocks in rotated order (see 3.)
            offs_m = block * BLOCK_M + rows
            tile_mask = (offs_m < M)[:, None] & n_valid[None, :]
            tile_offs = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
            y = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
            for s in range(0, k_splits):
                y += tl.load(partial_ptr + s * M * N + tile_offs, mask=tile_mask, other=0.0, cache_modifier=".cg")
            if HAS_BIAS:
                y += bias[None, :]
            if GELU:
                y = _gelu(y)
            if HAS_RESIDUAL:
                y += tl.load(residual_ptr + offs_m.to(tl.int64)[:, None] * stride_residual + offs_n[None, :],
                             mask=tile_mask, other=0.0).to(tl.float32)
            if not NORM:
                tl.store(out_ptr + offs_m.to(tl.int64)[:, None] * stride_out + offs_n[None, :],
                         y.to(out_ptr.dtype.element_ty), mask=tile_mask)
            else:
                tl.store(sums_ptr + tile_offs, y, mask=tile_mask)
                # 3. the last column tile to finish a row block normalizes its rows; the rotated
                # order above spreads that work over different programs
                if _last_to_arrive(counters_ptr + n_tiles + block, n_tiles):
                    cols = tl.arange(0, BLOCK_NORM)
                    col_valid = cols < N
                    gamma = tl.load(norm_w_ptr + cols, mask=col_valid, other=0.0).to(tl.float32)
                    beta = tl.load(norm_b_ptr + cols, mask=col_valid, other=0.0).to(tl.float32)
                    for r in range(0, BLOCK_M, NORM_ROWS):
                        norm_rows = block * BLOCK_M + r + tl.arange(0, NORM_ROWS)
                        valid = (norm_rows < M)[:, None] & col_valid[None, :]
                        v = tl.load(sums_ptr + norm_rows.to(tl.int64)[:, None] * N + cols[None, :], mask=valid,
                                    other=0.0, cache_modifier=".cg")
                        mean = tl.sum(v, axis=1) / N
                        centered = tl.where(valid, v - mean[:, None], 0.0)
                        rstd = 1.0 / tl.sqrt(tl.sum(centered * centered, axis=1) / N + eps)
                        normed = centered * rstd[:, None] * gamma[None, :] + beta[None, :]
                        tl.store(out_ptr + norm_rows.to(tl.int64)[:, None] * stride_out + cols[None, :],
                                 normed.to(out_ptr.dtype.element_ty), mask=valid)


_counters: dict[tuple, torch.Tensor] = {}


def _arrival_counters(device: torch.device, n: int) -> torch.Tensor:
    """Zeroed int32 counters shared by the launches of one stream: launches on a stream are ordered,
    and each leaves its counters at zero."""
    key = (device, torch.cuda.current_stream(device).stream_id if device.type == "cuda" else 0)
    buf = _counters.get(key)
    if buf is None or buf.numel() < n:
        buf = _counters[key] = torch.zeros(max(n, 8192), dtype=torch.int32, device=device)
    return buf


def _tile_config(m: int, n: int, k: int) -> dict:
    """One weight tile per program, at most 256 deep in K; the widest N tile that still gives about
    TARGET_PROGRAMS programs, so that the weight stream is spread over the whole GPU."""
    block_k = min(max(triton.next_power_of_2(k), 16), 256)
    k_splits = triton.cdiv(k, block_k)
    block_n = next((b for b in (64, 32) if triton.cdiv(n, b) * k_splits >= TARGET_PROGRAMS), 16)
    block_m = 16 if m <= 16 else 32
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=4, num_stages=2)


def fused_linear(x, weight, bias=None, *, gelu=False, residual=None, norm=None):
    """The few-row kernel on a 2-D ``x`` [M, K]; ``norm`` is (weight, bias, eps) of a LayerNorm."""
    m, k = x.shape
    n = weight.shape[0]
    cfg = _tile_config(m, n, k)
    grid = (triton.cdiv(n, cfg["BLOCK_N"]), triton.cdiv(k, cfg["BLOCK_K"]))
    out = torch.empty(m, n, dtype=x.dtype, device=x.device)
    partial = torch.empty(grid[1], m, n, dtype=torch.float32, device=x.device)
    sums = torch.empty(m, n, dtype=torch.float32, device=x.device) if norm is not None else partial
    counters = _arrival_counters(x.device, grid[0] + triton.cdiv(m, cfg["BLOCK_M"]))
    norm_w, norm_b, eps = norm if norm is not None else (weight, weight, 0.0)
    pdl = use_pdl(x.device)
    _linear_kernel[grid](
        x, weight, bias if bias is not None else weight, residual if residual is not None else x, out,
        norm_w, norm_b, partial, sums, counters,
        m, n, k, eps, x.stride(0), residual.stride(0) if residual is not None else 0, out.stride(0),
        HAS_BIAS=bias is not None, GELU=gelu, HAS_RESIDUAL=residual is not None, NORM=norm is not None,
        BLOCK_NORM=triton.next_power_of_2(n), NORM_ROWS=8, PDL=pdl, PRECISION=dot_precision(x.dtype),
        **cfg, **pdl_launch_args(pdl),
    )
    return out


def cublas_linear(x, weight, bias=None, *, gelu=False, residual=None, norm=None):
    """The many-row path: the GEMM on cuBLAS, what follows it in one Triton kernel (two with both
    GELU and LayerNorm)."""
    if not gelu and residual is None and norm is None:
        return F.linear(x, weight, bias)
    y = F.linear(x, weight)
    if gelu:
        y, bias = bias_gelu(y, bias), None
    if norm is not None:
        return layer_norm(y, *norm, residual=residual, x_bias=bias)
    if bias is not None:
        y = y + bias
    return y + residual if residual is not None else y


def linear(x, weight, bias=None, *, gelu=False, residual=None, norm=None):
    """LN(act(x @ weight^T + bias) + residual) over the last dimension of ``x``; every part optional.

    ``norm`` is (weight, bias, eps) of the LayerNorm; ``gelu`` is exact (erf) GELU.
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
    res2 = residual.reshape(-1, n) if residual is not None else None
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    if x2.shape[0] <= FUSED_MAX_ROWS:
        y = fused_linear(x2, weight, bias, gelu=gelu, residual=res2, norm=norm)
    else:
        y = cublas_linear(x2, weight, bias, gelu=gelu, residual=res2, norm=norm)
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
