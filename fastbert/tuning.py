"""Where each fast path starts and stops, by GPU generation.

The engine picks its kernels by the size of a call: the few-row Triton GEMM or cuBLAS, split-K FFN-down or not,
the attention output projection inside the attention kernel or after it, the last layer at every row or only at
the rows asked for, a packed or a padded batch, and whether kernels launch as dependents. ``HOPPER`` holds the
bounds measured on a GPU of compute capability 9.0 (benchmarks/NOTES.md, "Current decisions"). Other GPUs get
``PORTABLE``: no programmatic dependent launch, which needs 9.0, and the bounds measured there without it.

``FASTBERT_TUNING=portable`` (or ``hopper``) in the environment, or ``fastbert.tuning.forced = PORTABLE``, makes
every device use one set; graphs already captured keep the paths they captured.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Tuning:
    few_rows: int                    # GEMMs of up to this many rows run on the few-row Triton kernel ...
    tiled_rows: int                  # ... and from there up to this many on the tiled Triton one (0: never),
    tiled_k_slice: int               # which splits K into slices of this many inputs where a LayerNorm follows
    split_k_rows: int                # a GEMM followed by a LayerNorm (FFN-down) splits K up to this many rows ...
    split_k_from: int                # ... when it has at least this many inputs
    projected_attention_tokens: int  # up to this many tokens, the output projection runs inside attention
    prune_from_tokens: int           # from this many tokens, logits_at runs the last layer at its rows only
    pack_from_positions: int         # auto mode packs batches of at least this many padded positions ...
    pack_when_filled_below: float    # ... whose tokens fill at most this share of them
    dependent_launch: bool           # Triton kernels launch as programmatic dependents ...
    dependent_launch_tokens: int     # ... in calls of up to this many tokens


# A chain of Triton kernels launched as dependents is what lets the few-row GEMM pay up to 64 rows, and the tiled
# GEMM to 128: past that cuBLAS's GEMMs were faster in whole calls than the chain (benchmarks/NOTES.md, "Tiled GEMMs").
HOPPER = Tuning(few_rows=64, tiled_rows=128, tiled_k_slice=384, split_k_rows=128, split_k_from=2048,
                projected_attention_tokens=64, prune_from_tokens=128, pack_from_positions=2048,
                pack_when_filled_below=0.6, dependent_launch=True, dependent_launch_tokens=128)
# Without dependent launch the few-row kernel gains nothing over cuBLAS past 16 rows, and the tiled one, timed
# alone, lost to cuBLAS.
PORTABLE = replace(HOPPER, few_rows=16, tiled_rows=0, dependent_launch=False)
TUNINGS = {"hopper": HOPPER, "portable": PORTABLE}


def from_environment(name: str | None) -> Tuning | None:
    """The set ``FASTBERT_TUNING`` names, or None (each device its own) when it is empty or unset."""
    if not name:
        return None
    if name not in TUNINGS:
        raise ValueError(f"FASTBERT_TUNING={name!r} is not a tuning; choose {' or '.join(TUNINGS)}")
    return TUNINGS[name]


forced: Tuning | None = from_environment(os.environ.get("FASTBERT_TUNING"))


@functools.cache
def _capability(index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(index)


def capability(device: torch.device) -> tuple[int, int] | None:
    """The compute capability of a CUDA device; None for any other device."""
    if device.type != "cuda":
        return None
    return _capability(device.index if device.index is not None else torch.cuda.current_device())


def for_capability(capability: tuple[int, int] | None) -> Tuning:
    """Off the GPU, kernels run only under Triton's interpreter, in tests: they take the Hopper set, so that the
    tests cover the paths the newest GPUs run (dependent launch itself needs a GPU)."""
    return HOPPER if capability is None or capability >= (9, 0) else PORTABLE


_by_device: dict[torch.device, Tuning] = {}


def settings(device: torch.device) -> Tuning:
    """The tuning for ``device``: ``forced`` when set, else by its compute capability. A batch-1 call asks once,
    so the answer is kept per device (reading ``device.type`` alone costs more than the lookup)."""
    if forced is not None:
        return forced
    found = _by_device.get(device)
    if found is None:
        found = for_capability(capability(device))
        if device.type != "cuda" or device.index is not None:  # "cuda" alone means whichever device is current
            _by_device[device] = found
    return found
