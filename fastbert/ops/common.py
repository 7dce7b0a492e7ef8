"""Checks and helpers shared by the kernel launchers."""

from __future__ import annotations

import contextlib
import gc
import os

import torch
import triton

from ..errors import InputError

KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU through its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@contextlib.contextmanager
def collection_paused():
    """Around a CUDA-graph capture. torch no longer collects garbage before a capture, so a collection may fall
    inside one and release other objects' CUDA resources through calls a capture forbids, which aborts the
    process."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_device(*tensors: torch.Tensor) -> None:
    device = tensors[0].device
    for t in tensors:
        if t.device != device:
            raise InputError(f"tensors on different devices: {device} and {t.device}")
    if device.type != "cuda" and not interpreting():
        raise InputError(
            f"Triton kernels need CUDA tensors (got {device}); on the CPU set TRITON_INTERPRET=1 "
            "before importing fastbert, or use backend='torch'"
        )


def check_dtype(name: str, t: torch.Tensor, allowed=KERNEL_DTYPES) -> None:
    if t.dtype not in allowed:
        raise InputError(f"{name} has dtype {t.dtype}; expected one of {', '.join(map(str, allowed))}")


def check_shape(name: str, t: torch.Tensor, shape: tuple) -> None:
    """``shape`` may hold None for a dimension that is free."""
    if t.dim() != len(shape) or any(want is not None and got != want for got, want in zip(t.shape, shape)):
        raise InputError(f"{name} has shape {tuple(t.shape)}; expected {shape}")


def block_size(n: int, minimum: int = 16) -> int:
    return max(triton.next_power_of_2(n), minimum)


def k_slice_width(k: int, splits: int, block_k: int) -> int:
    """Inputs per slice when a GEMM splits K into at most ``splits`` slices: a multiple of the K block, so that only
    the last slice ends short of one."""
    return triton.cdiv(triton.cdiv(k, splits), block_k) * block_k


def row_warps(columns: int, per_warp: int = 256, most: int = 8) -> int:
    """Warps for a kernel that spreads a row's ``columns`` over its warps: one per ``per_warp``, 1 to ``most``."""
    return min(max(columns // per_warp, 1), most)


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 matrix products in full precision: tf32 would cost fp32 callers three digits."""
    return "ieee" if dtype == torch.float32 else "tf32"

