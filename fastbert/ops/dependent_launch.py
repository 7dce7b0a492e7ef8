"""Programmatic dependent launch (compute capability 9.0 and newer) for the kernels of few-token calls.

At batch 1 a forward pass is a chain of small dependent kernels, each costing its ramp-up and drain more than its
work. A kernel launched as a dependent starts while its predecessor still runs: it may fetch what does not depend
on that predecessor (its slice of the weights, into L2), then waits for it to finish (``griddepcontrol.wait``)
before reading any activation or writing anything, and only then lets its own successor launch, so at most one
kernel runs ahead of the chain. Correctness never rests on the early start: every kernel that takes the DEPENDENT
constexpr waits before its first dependent access, and a launch without the attribute waits for its predecessor
as usual.

``fastbert.tuning`` says up to how many tokens a call launches so. Larger calls sit between cuBLAS GEMMs, which
cannot launch as dependents, and there it lost (benchmarks/NOTES.md, "Dependent launch at few tokens").
``FASTBERT_DEPENDENT_LAUNCH=0`` in the environment turns it off everywhere.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .. import tuning
from .common import interpreting

ENABLED = os.environ.get("FASTBERT_DEPENDENT_LAUNCH", "1") != "0"


def supported(device: torch.device) -> bool:
    """Whether kernels on ``device`` can launch as dependents: a CUDA GPU of compute capability 9.0 or newer."""
    if interpreting() or torch.version.hip is not None:
        return False
    capability = tuning.capability(device)
    return capability is not None and capability >= (9, 0)


def launch_options(device: torch.device, rows: int) -> dict:
    """Keyword arguments for launching a kernel that takes the DEPENDENT constexpr over ``rows`` tokens: as a
    dependent where the device's tuning asks for it and the device supports it, unless
    ``FASTBERT_DEPENDENT_LAUNCH=0``."""
    tuned = tuning.settings(device)
    dependent = ENABLED and tuned.dependent_launch and rows <= tuned.dependent_launch_tokens and supported(device)
    return dict(DEPENDENT=True, launch_pdl=True) if dependent else dict(DEPENDENT=False)


def prefetchable(weight: torch.Tensor, chunk: int) -> bool:
    """Whether every row of ``weight``, read in chunks of ``chunk`` columns, meets the bulk prefetch's rule: each
    chunk starts at a 16-byte boundary and spans a multiple of 16 bytes."""
    size = weight.element_size()
    return all(value % 16 == 0 for value in (weight.data_ptr(), weight.stride(0) * size, weight.shape[1] * size,
                                             chunk * size))


def all_triton(device: torch.device, rows: int) -> bool:
    """Whether a layer over ``rows`` tokens is made of Triton kernels only (few-row or tiled GEMMs, no cuBLAS)."""
    tuned = tuning.settings(device)
    return rows <= max(tuned.few_rows, tuned.tiled_rows)


def chain_launch_options(device: torch.device, rows: int) -> dict:
    """``launch_options`` for a kernel that pays as a dependent only inside an all-Triton layer (``all_triton``):
    one between cuBLAS GEMMs would start no earlier than without."""
    return launch_options(device, rows) if all_triton(device, rows) else dict(DEPENDENT=False)


def gemm_launch_options(x: torch.Tensor, weight: torch.Tensor, chunk: int) -> dict:
    """``launch_options`` for a Triton GEMM of ``x`` by ``weight`` read in chunks of ``chunk`` columns, plus
    PREFETCH: the weight prefetch where the producer is a dependent kernel too, in an all-Triton layer. After a
    cuBLAS GEMM the kernel starts only once that GEMM is done, and its prefetch would then duplicate the loads that
    follow."""
    options = launch_options(x.device, len(x))
    prefetch = options["DEPENDENT"] and all_triton(x.device, len(x)) and prefetchable(weight, chunk)
    return options | dict(PREFETCH=prefetch)


@triton.jit
def wait_for_producer(DEPENDENT: tl.constexpr):
    """Before the first read of an activation or any write: the previous kernel has finished and its writes are
    visible. Then the next kernel may launch."""
    if DEPENDENT:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()


@triton.jit
def prefetch_to_l2(ptrs, nbytes):
    """Start bringing ``nbytes`` from each address in ``ptrs`` into L2 (see ``prefetchable``), without waiting."""
    tl.inline_asm_elementwise("cp.async.bulk.prefetch.L2.global [$1], $2;\n\tmov.u32 $0, 0;", "=r,l,r",
                              [ptrs, nbytes], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def prefetch_rows_to_l2(weight_ptr, offs_n, n, k_start, k_end, stride_w):
    """Weight rows ``offs_n``, inputs k_start .. k_end, on their way into L2."""
    row_ptrs = weight_ptr + tl.minimum(offs_n, n - 1).to(tl.int64) * stride_w + k_start
    prefetch_to_l2(row_ptrs, (k_end - k_start) * (weight_ptr.dtype.element_ty.primitive_bitwidth // 8))


@triton.jit
def prefetch_then_wait(weight_ptr, offs_n, n, k_start, k_end, stride_w, DEPENDENT: tl.constexpr,
                       PREFETCH: tl.constexpr):
    """A GEMM's weight rows ``offs_n``, inputs k_start .. k_end, on their way into L2 while the previous kernel
    runs; then the wait for it."""
    if PREFETCH:
        prefetch_rows_to_l2(weight_ptr, offs_n, n, k_start, k_end, stride_w)
    wait_for_producer(DEPENDENT)
