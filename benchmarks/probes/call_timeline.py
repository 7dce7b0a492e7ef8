"""Where one fastbert call spends its time, host and device: the host time of each phase of a call (input checks,
staging, the replay's launch, copies out), and the device timeline under the CUDA profiler (busy time, the span from
first kernel to last, and the widest gaps between kernels with the kernels on each side).

    PYTHONPATH=. python3 -m benchmarks.probes.call_timeline [--workloads device-8,host-8,encoder-32x512]

Workloads (bert-base-cased architecture, random weights, fp16): ``host-S`` and ``device-S`` are batch-1 fill-mask
calls at S tokens with the inputs on the host or already on the GPU; ``encoder-BxS`` is the encoder alone (every
token's hidden state) at B x S from host inputs, as the ``scale`` section runs it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.checkpoints import architecture, save_random_checkpoint
from benchmarks.inputs import fill_mask_batch

CALLS = 200
PROFILED_CALLS = 10


@contextmanager
def phases_timed(totals: dict[str, list[int]]):
    """Wraps the functions a call goes through so that each records its host time (ns) into ``totals``."""
    import fastbert.graphs
    import fastbert.model

    # nested: a call's replay path holds its staging, which holds the device staging kernel
    targets = [(fastbert.model, "check_inputs"), (fastbert.graphs.GraphRunner, "input_stats"),
               (fastbert.graphs.GraphRunner, "__call__"), (fastbert.graphs, "stage_padded"),
               (torch.cuda.CUDAGraph, "replay"), (torch.Tensor, "clone")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    for owner, name, original in saved:
        def timed(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter_ns()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_name].append(time.perf_counter_ns() - start)
        setattr(owner, name, timed)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def host_phases(call) -> None:
    for _ in range(20):
        call()
    torch.cuda.synchronize()
    totals: dict[str, list[int]] = defaultdict(list)
    walls, launched = [], []
    with phases_timed(totals):
        for _ in range(CALLS):
            start = time.perf_counter_ns()
            call()
            launched.append(time.perf_counter_ns() - start)
            torch.cuda.synchronize()
            walls.append(time.perf_counter_ns() - start)
    print(f"  call to result on the device, P50 {statistics.median(walls) / 1e3:.1f} µs; host until the call returns "
          f"{statistics.median(launched) / 1e3:.1f} µs")
    for name, times in totals.items():
        per_call = sum(times) / CALLS / 1e3
        print(f"  host in {name}: {per_call:.1f} µs per call ({len(times) // CALLS} per call)")


def device_timeline(call, gaps: int = 8) -> None:
    for _ in range(10):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as trace:
        for _ in range(PROFILED_CALLS):
            call()
            torch.cuda.synchronize()
    kernels = sorted((e for e in trace.events() if e.device_type == torch.autograd.DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    # calls are separated by the host's sync: split where the device idles longest
    spans, current = [], [kernels[0]]
    for previous, event in pairwise(kernels):
        if event.time_range.start - previous.time_range.end > 50:
            spans.append(current)
            current = []
        current.append(event)
    spans.append(current)
    last = spans[-1]
    busy = sum(e.time_range.end - e.time_range.start for e in last)
    span = last[-1].time_range.end - last[0].time_range.start
    print(f"  device, last call: {len(last)} kernels and copies, {busy:.0f} µs busy over a {span:.0f} µs span "
          f"({len(spans)} groups in {PROFILED_CALLS} calls)")
    widest = sorted(pairwise(last), key=lambda pair: pair[0].time_range.end - pair[1].time_range.start)[:gaps]
    for before, after in widest:
        gap = after.time_range.start - before.time_range.end
        print(f"    gap {gap:6.1f} µs after {before.name[:60]!r} before {after.name[:60]!r}")
    cpu = defaultdict(float)
    for event in trace.key_averages():
        if event.self_cpu_time_total > 0:
            cpu[event.key[:70]] += event.self_cpu_time_total / PROFILED_CALLS
    print("  host self time per call by op (profiled, so inflated):")
    for name, us in sorted(cpu.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {us:8.1f} µs  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="host-8,device-8,host-128,device-128,encoder-32x512")
    args = parser.parse_args()
    from fastbert import FastBert

    config = architecture("bert-base-cased", tiny=False)
    with tempfile.TemporaryDirectory() as work:
        mlm = save_random_checkpoint(config, Path(work) / "mlm", device="cuda", dtype=torch.float16,
                                     with_tokenizer=False)
        fill_mask = FastBert.from_pretrained(mlm, device="cuda")
        encoder = FastBert.from_pretrained(mlm, device="cuda", head="none")
        for workload in args.workloads.split(","):
            kind, _, shape = workload.partition("-")
            batch, seq = (int(n) for n in shape.split("x")) if "x" in shape else (1, int(shape))
            inputs = fill_mask_batch(config, [seq] * batch, seed=0)
            if kind == "encoder":
                def call(b=inputs):
                    return encoder(b.input_ids, attention_mask=b.attention_mask).last_hidden_state
            else:
                b = inputs if kind == "host" else replace(
                    inputs, input_ids=inputs.input_ids.cuda(), attention_mask=inputs.attention_mask.cuda(),
                    logits_at=inputs.logits_at.cuda())

                def call(b=b):
                    return fill_mask(b.input_ids, attention_mask=b.attention_mask, logits_at=b.logits_at).logits
            print(f"\n{workload}")
            host_phases(call)
            device_timeline(call)


if __name__ == "__main__":
    main()
