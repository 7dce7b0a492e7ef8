"""The device a model loads on: checked before anything is read, so that a device that is not there is one
error naming it and what is available, not a traceback from deep inside torch."""

from __future__ import annotations

import torch

from .errors import DeviceError

SUPPORTED_TYPES = ("cpu", "cuda")


def resolve_device(device) -> torch.device:
    """``device`` (a name such as "cuda:1", a torch.device, or None for CUDA when available, else the CPU) as a
    torch.device that this machine has; or DeviceError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):  # names torch does not know ("gpu"), bad indices, values that are no device
        raise DeviceError(f"unknown device {device!r}; available: {available()}") from None
    if resolved.type not in SUPPORTED_TYPES:
        raise DeviceError(f"fastbert does not run on {resolved.type} devices, only on CUDA GPUs and the CPU; "
                          f"available: {available()}")
    if resolved.type == "cuda":
        _check_cuda(device, resolved)
    return resolved


def available() -> str:
    """The devices fastbert can run on here, as a user would name them: "cpu, cuda:0, cuda:1"."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ", ".join(["cpu"] + [f"cuda:{index}" for index in range(gpus)])


def _check_cuda(device, resolved: torch.device) -> None:
    if not torch.cuda.is_available():
        why = "no CUDA GPU is visible" if torch.backends.cuda.is_built() else "this torch was built without CUDA"
        raise DeviceError(f"device {str(device)!r} is not available: {why}; available: {available()}")
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        plural = "" if count == 1 else "s"
        raise DeviceError(f"device {str(device)!r} is not available: this machine has {count} CUDA device{plural}; "
                          f"available: {available()}")
