"""act(x @ W^T + b) as a tiled Triton GEMM, for calls of a few hundred rows (batch 1 at 65-512 tokens).

cuBLAS runs these GEMMs well, but it cannot launch as a programmatic dependent through torch, so each one breaks
the chain of dependent kernels that a layer is made of: the kernel after it starts only once it has drained, and
the GEMM itself starts cold. This kernel takes the DEPENDENT constexpr like the others: its first M-tile row of
programs sends its slice of the weight towards L2 while the previous kernel still runs, and every program waits
for that kernel before it reads an activation. Tiles are small (``tiles``) so that a 512-row GEMM of BERT's widths
spreads over most of the SMs. Measurements: benchmarks/NOTES.md, "Tiled GEMMs at 65-512 rows".
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ..errors import InputError
from .common import check_device, dot_precision, k_slice_width
from .dependent_launch import gemm_launch_options, prefetch_rows_to_l2, wait_for_producer
from .gelu import gelu_erf

GROUP_M = 8  # M-tiles that walk the N-tiles together, so their weight tiles are read from L2


class Tiles(NamedTuple):
    block_m: int
    block_n: int
    block_k: int
    warps: int
    stages: int


def tiles(rows: int, n: int, k: int) -> Tiles:
    """The tile shape for an [rows, k] x [k, n] product: the fastest of ``benchmarks/probes/tiled_gemm.py``'s sweep
    for all four of BERT-base's GEMMs at 128 rows, the most the tuning gives this kernel (benchmarks/NOTES.md)."""
    return Tiles(64, 64, 128, 4, 3)


@triton.jit
def _tiled_kernel(x_ptr, weight_ptr, bias_ptr, out_ptr, rows, n, k, k_chunk, stride_x, stride_w, stride_out,
                  stride_part, HAS_BIAS: tl.constexpr, GELU: tl.constexpr, PARTS: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP: tl.constexpr,
                  EVEN_K: tl.constexpr, PRECISION: tl.constexpr, DEPENDENT: tl.constexpr, PREFETCH: tl.constexpr):
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(rows, BLOCK_M)
    tiles_n = tl.cdiv(n, BLOCK_N)
    in_group = GROUP * tiles_n
    first_m = (pid // in_group) * GROUP
    group_rows = tl.minimum(tiles_m - first_m, GROUP)
    tile_m = first_m + (pid % in_group) % group_rows
    tile_n = (pid % in_group) // group_rows
    split = tl.program_id(1)
    k_start, k_end = split * k_chunk, tl.minimum((split + 1) * k_chunk, k)

    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    if PREFETCH:
        if tile_m == 0:  # one program per weight tile: the M-tiles after the first read it from L2 anyway
            prefetch_rows_to_l2(weight_ptr, offs_n, n, k_start, k_end, stride_w)
    wait_for_producer(DEPENDENT)

    x_ptrs = x_ptr + offs_m[:, None].to(tl.int64) * stride_x + k_start + offs_k[None, :]
    w_ptrs = weight_ptr + offs_n[:, None].to(tl.int64) * stride_w + k_start + offs_k[None, :]
    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for start in range(k_start, k_end, BLOCK_K):  # a slice ends at a multiple of BLOCK_K, or at k
        if EVEN_K:
            x = tl.load(x_ptrs, mask=offs_m[:, None] < rows, other=0.0)
            w = tl.load(w_ptrs, mask=offs_n[:, None] < n, other=0.0)
        else:
            in_k = start + offs_k[None, :] < k
            x = tl.load(x_ptrs, mask=(offs_m[:, None] < rows) & in_k, other=0.0)
            w = tl.load(w_ptrs, mask=(offs_n[:, None] < n) & in_k, other=0.0)
        acc = tl.dot(x, tl.trans(w), acc, input_precision=PRECISION)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=offs_n < n, other=0.0).to(tl.float32)[None, :]
    if GELU:
        acc = gelu_erf(acc)
    out_ptrs = out_ptr + offs_m[:, None].to(tl.int64) * stride_out + offs_n[None, :]
    if PARTS:
        out_ptrs += split * stride_part
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=(offs_m[:, None] < rows) & (offs_n[None, :] < n))


def _launch(x, weight, bias, out, gelu, tile, chunk):
    """``out`` [M, N] takes act(x @ weight^T + bias); [P, M, N] takes the partial products of P slices of K."""
    if x.stride(-1) != 1 or weight.stride(-1) != 1:
        raise InputError("the tiled GEMM needs x and weight contiguous in their last dimension")
    rows, k = x.shape
    n = weight.shape[0]
    grid = (triton.cdiv(rows, tile.block_m) * triton.cdiv(n, tile.block_n), triton.cdiv(k, chunk))
    parts = out.dim() == 3
    _tiled_kernel[grid](
        x, weight, bias if bias is not None else x, out, rows, n, k, chunk, x.stride(0), weight.stride(0),
        out.stride(-2), out.stride(0) if parts else 0, HAS_BIAS=bias is not None, GELU=gelu, PARTS=parts,
        BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, BLOCK_K=tile.block_k, GROUP=GROUP_M,
        EVEN_K=k % tile.block_k == 0, PRECISION=dot_precision(x.dtype), num_warps=tile.warps, num_stages=tile.stages,
        **gemm_launch_options(x, weight, chunk))
    return out


def tiled_linear(x, weight, bias=None, *, gelu=False, tile: Tiles | None = None):
    """act(x @ weight^T + bias) for [M, K] ``x`` and [N, K] ``weight``, both contiguous in their last dimension;
    ``bias`` may be None, ``gelu`` is the exact (erf) GELU. ``tile`` overrides the tile shape ``tiles`` picks."""
    check_device(x, weight, *(() if bias is None else (bias,)))
    tile = tile or tiles(len(x), *weight.shape)
    out = torch.empty(len(x), len(weight), dtype=x.dtype, device=x.device)
    return _launch(x, weight, bias, out, gelu, tile, x.shape[1])


def tiled_split_k_linear(x, weight, splits: int, *, tile: Tiles | None = None):
    """[M, K] ``x`` by [N, K] ``weight`` -> [P, M, N] fp32 partial products over P <= ``splits`` slices of K, whose
    sum is x @ weight^T; ``layer_norm(..., parts=True)`` adds them up. For a GEMM whose output has fewer tiles than
    the GPU has SMs (FFN-down at a few hundred rows), so that every SM gets a share."""
    check_device(x, weight)
    tile = tile or tiles(len(x), *weight.shape)
    k = x.shape[1]
    chunk = k_slice_width(k, splits, tile.block_k)
    parts = torch.empty(triton.cdiv(k, chunk), len(x), len(weight), dtype=torch.float32, device=x.device)
    return _launch(x, weight, None, parts, False, tile, chunk)
