"""GPU time per kernel of one encoder call, fastbert against torch.compile of transformers' BertModel, at the large
shapes of the ``scale`` section (bert-base-cased architecture, fp16, every token's hidden state).

    PYTHONPATH=. python3 -m benchmarks.probes.kernel_breakdown [--shapes 32x512,128x128]

Kernels are grouped by name over ten calls under the CUDA profiler; the table gives µs per call.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.checkpoints import architecture, save_random_checkpoint

CALLS = 10


def kernel_times(fn) -> dict[str, float]:
    """µs per call of each kernel name, over CALLS calls after warm-up."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        for _ in range(CALLS):
            fn()
        torch.cuda.synchronize()
    totals: dict[str, float] = defaultdict(float)
    for event in trace.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals[event.name[:90]] += event.device_time / CALLS
    return totals


def show(title: str, totals: dict[str, float], top: int = 14) -> None:
    print(f"\n{title}: {sum(totals.values()):.0f} µs of kernels per call")
    for name, us in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {us:9.1f}  {name}")


def fastbert_call(directory: Path, ids, mask):
    from fastbert import FastBert

    model = FastBert.from_pretrained(directory, device="cuda", head="none")
    ids_gpu, mask_gpu = ids.cuda(), mask.cuda()
    return lambda: model(ids_gpu, attention_mask=mask_gpu).last_hidden_state


def compile_call(directory: Path, ids, mask):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(directory, torch_dtype=torch.float16, attn_implementation="sdpa").cuda().eval()
    compiled = torch.compile(model)
    ids_gpu, mask_gpu = ids.cuda(), mask.cuda()

    def call():
        with torch.no_grad():
            return compiled(input_ids=ids_gpu, attention_mask=mask_gpu).last_hidden_state
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="32x512,128x128")
    args = parser.parse_args()
    shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]
    config = architecture("bert-base-cased", tiny=False)
    with tempfile.TemporaryDirectory() as work:
        directory = save_random_checkpoint(config, Path(work), device="cuda", dtype=torch.float16,
                                           with_tokenizer=False, head="none")
        for batch, seq in shapes:
            ids = torch.randint(1000, 20000, (batch, seq))
            mask = torch.ones_like(ids)
            for name, build in (("fastbert", fastbert_call), ("torch.compile", compile_call)):
                show(f"{name} {batch} x {seq}", kernel_times(build(directory, ids, mask)))
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
