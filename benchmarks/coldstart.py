"""Cold start: a fresh process from ``FastBert.from_pretrained`` to the first result and to every batch-1 bucket
captured, once with an empty Triton cache and once with the cache the first process left behind.

Run as a module, this file is the child process; ``run`` is the parent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT_MARKER = "COLDSTART-RESULT "
REPO_ROOT = Path(__file__).resolve().parents[1]
MIN_SECONDS = 30.0


def child(checkpoint: str, device: str, dtype: str, seq: int) -> dict:
    started = time.perf_counter()
    import torch

    from fastbert import FastBert

    from .inputs import fill_mask_batch

    imported = time.perf_counter()
    model = FastBert.from_pretrained(checkpoint, device=device, dtype=getattr(torch, dtype))
    loaded = time.perf_counter()
    batch = fill_mask_batch(model.config, [seq], seed=0)
    model(batch.input_ids, attention_mask=batch.attention_mask, logits_at=batch.logits_at)
    if device == "cuda":
        torch.cuda.synchronize()
    first_result = time.perf_counter()
    warmup = getattr(model, "warmup", None)
    if warmup is not None:
        warmup(batch_sizes=(1,))
    if device == "cuda":
        torch.cuda.synchronize()
    captured = time.perf_counter()
    graph_memory = getattr(model, "graph_memory_bytes", None)
    return dict(
        import_s=imported - started,
        load_s=loaded - imported,
        first_result_s=first_result - imported,
        all_batch1_captured_s=captured - imported if warmup is not None else None,
        graph_memory_bytes=graph_memory() if graph_memory is not None else None,
        max_memory_allocated_bytes=torch.cuda.max_memory_allocated() if device == "cuda" else None,
    )


def spawn(checkpoint: Path, settings, triton_cache: str, timeout: float) -> dict:
    command = [sys.executable, "-m", "benchmarks.coldstart", str(checkpoint), "--device", settings.device.type,
               "--dtype", str(settings.dtype).removeprefix("torch."), "--seq", str(settings.profile.coldstart_seq)]
    env = dict(os.environ, TRITON_CACHE_DIR=triton_cache)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(status="failed", error=f"the process ran past {timeout:.0f} s (the time left in this call)")
    wall_s = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        return dict(status="failed", error=f"exit code {done.returncode}: {done.stderr[-1500:]}")
    return dict(status="ok", process_wall_s=wall_s, **json.loads(lines[-1].removeprefix(RESULT_MARKER)))


def run(settings) -> dict:
    """Times are seconds from the end of imports (``*_s``), imports apart, and the process's whole life."""
    checkpoint, _ = settings.checkpoints.get("bert-base-cased")
    result = dict(model="bert-base-cased", first_result_seq=settings.profile.coldstart_seq)
    with tempfile.TemporaryDirectory(prefix="triton-cache-") as triton_cache:
        for label in ("empty_triton_cache", "warm_triton_cache"):  # the second process reuses the first one's cache
            left = settings.budget.left()
            if left < MIN_SECONDS:
                result[label] = dict(status="skipped", reason=settings.budget.spent_reason)
                continue
            result[label] = spawn(checkpoint, settings, triton_cache, timeout=left - 5.0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="one cold start of fastbert (run by benchmarks.run)")
    parser.add_argument("checkpoint")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    print(RESULT_MARKER + json.dumps(child(args.checkpoint, args.device, args.dtype, args.seq)), flush=True)


if __name__ == "__main__":
    main()
