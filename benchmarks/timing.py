"""The one timing helper, and CUDA-graph capture of a callable (used by a peer and by the op benchmarks).

On CUDA each call sits between two CUDA events with the stream otherwise idle and is followed by
``torch.cuda.synchronize()``, so a sample spans host work, copies and kernels until the result is
ready; on the CPU, ``time.perf_counter`` (structure only, no timing claims).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

MIN_RUNS = 50  # a point cut short by its time cap still gets this many samples


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p90_ms: float
    mean_ms: float
    runs: int

    def as_dict(self) -> dict:
        return asdict(self)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, *, warmup: int, iters: int,
               max_seconds: float | None = None) -> Timing:
    """``warmup`` untimed calls, then ``iters`` timed ones (fewer, but at least MIN_RUNS, past ``max_seconds``)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    timed = event_timer(device) if device.type == "cuda" else wall_timer
    samples = []
    started = time.perf_counter()
    for _ in range(iters):
        samples.append(timed(fn))
        if max_seconds is not None and len(samples) >= MIN_RUNS and time.perf_counter() - started > max_seconds:
            break
    return summarize(samples)


def event_timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed(fn) -> float:
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end)
    return timed


def wall_timer(fn: Callable[[], object]) -> float:
    tick = time.perf_counter()
    fn()
    return (time.perf_counter() - tick) * 1e3


def summarize(samples_ms: list[float]) -> Timing:
    if len(samples_ms) < 2:
        raise ValueError("percentiles need at least 2 timed runs")
    deciles = statistics.quantiles(samples_ms, n=10, method="inclusive")
    return Timing(p50_ms=deciles[4], p90_ms=deciles[8], mean_ms=statistics.fmean(samples_ms), runs=len(samples_ms))


def graphed(fn: Callable[[], torch.Tensor], device: torch.device, *, reps: int = 1) -> Callable[[], torch.Tensor]:
    """A callable that runs ``fn`` ``reps`` times back to back and returns the last output: on CUDA, one replay of a
    CUDA graph holding all of them; on the CPU, plain calls (so the CPU run walks the same code)."""
    if device.type != "cuda":
        def run_plain():
            for _ in range(reps - 1):
                fn()
            return fn()
        return run_plain
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):  # lazy initialization (cuBLAS handles, Triton compiles) must not happen in capture
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            output = fn()

    def replay():
        graph.replay()
        return output
    return replay
