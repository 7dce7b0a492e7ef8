"""Hardware ceilings measured in the same run, the floors they imply, and the environment they were measured in."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess

import torch

from fastbert import BertConfig

from .timing import graphed, time_calls

NVIDIA_SMI_FIELDS = ("name", "driver_version", "clocks.sm", "clocks.mem", "clocks.max.sm")
REPS = 10


def measure_floors(settings) -> dict:
    """Device-to-device copy bandwidth (bytes read + written) and dense GEMM rate on random data, each from
    CUDA-graph replays of REPS back-to-back calls, so launch gaps do not lower the ceilings."""
    device, dtype, profile = settings.device, settings.dtype, settings.profile
    source = torch.randn(profile.copy_mib * 2**20 // dtype.itemsize, device=device, dtype=dtype)
    target = torch.empty_like(source)
    copy_ms = per_call_ms(lambda: target.copy_(source), device)
    copied_bytes = 2 * source.numel() * source.element_size()
    n = profile.gemm_n
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)
    gemm_ms = per_call_ms(lambda: torch.mm(a, b, out=c), device)
    return dict(copy_bytes=copied_bytes, copy_ms=copy_ms, copy_gbps=copied_bytes / copy_ms / 1e6, gemm_n=n,
                gemm_dtype=str(dtype).removeprefix("torch."), gemm_ms=gemm_ms, gemm_tflops=2 * n**3 / gemm_ms / 1e9)


def per_call_ms(fn, device) -> float:
    return time_calls(graphed(fn, device, reps=REPS), device, warmup=2, iters=10).p50_ms / REPS


def weight_read_bytes(config: BertConfig, element_size: int) -> int:
    """Bytes every fill-mask forward must read at least once: encoder layers and the MLM head with its full
    decoder (one [MASK] still needs every vocabulary row). Embedding tables are only gathered, so left out."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    layer = (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    head = (h * h + h) + 2 * h + (v * h + v)
    return (config.num_hidden_layers * layer + head) * element_size


def fill_mask_flops(config: BertConfig, lengths: list[int]) -> int:
    """Matrix-multiply FLOPs of a fill-mask forward over sequences of these lengths, one [MASK] each: projections
    and FFN per token, attention scores and context per token pair, the MLM head at the masks only."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    tokens, token_pairs = sum(lengths), sum(n * n for n in lengths)
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 4 * token_pairs * h
    head = 2 * len(lengths) * (h * h + h * v)
    return config.num_hidden_layers * per_layer + head


def floor_ms(flops: int, floors: dict) -> float:
    return flops / (floors["gemm_tflops"] * 1e9)


def _nvidia_smi() -> dict:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(NVIDIA_SMI_FIELDS)}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return dict(nvidia_smi=f"unavailable: {e}")
    first_gpu = out.strip().splitlines()[0]
    return dict(zip(NVIDIA_SMI_FIELDS, (field.strip() for field in first_gpu.split(","))))


def environment(device: torch.device) -> dict:
    import transformers
    import triton

    import fastbert

    env = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        time_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S"),
        python=platform.python_version(),
        torch=torch.__version__, cuda=torch.version.cuda, triton=triton.__version__,
        transformers=transformers.__version__, fastbert=fastbert.__version__,
        cpu_count=os.cpu_count(), platform=platform.platform(),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, sm_count=props.multi_processor_count,
                   memory_gib=round(props.total_memory / 2**30, 1), compute_capability=f"{props.major}.{props.minor}",
                   **_nvidia_smi())
    else:
        env.update(gpu="cpu", processor=platform.processor() or platform.machine())
    return env
