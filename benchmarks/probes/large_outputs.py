"""Where the time and memory of a large all-position call go: graph replay + copy-out against an eager pass, and
the MLM decoder GEMM at the vocabulary's width against a width padded to a multiple of 64 (bert-base-cased, fp16).

    PYTHONPATH=. python3 -m benchmarks.probes.large_outputs
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import triton.testing

from benchmarks.checkpoints import architecture, save_random_checkpoint


def median_ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median")


def gemm_widths(rows: int, hidden: int, vocab: int) -> None:
    x = torch.randn(rows, hidden, device="cuda", dtype=torch.float16)
    for width in (vocab, -(-vocab // 64) * 64):
        w = torch.randn(width, hidden, device="cuda", dtype=torch.float16)
        b = torch.randn(width, device="cuda", dtype=torch.float16)
        ms = median_ms(lambda: torch.addmm(b, x, w.t()))
        print(f"decoder GEMM {rows} x {hidden} -> {width}: {ms:.3f} ms ({2 * rows * hidden * width / ms / 1e9:.0f} "
              f"TFLOP/s)")


def model_calls(directory: Path, batch: int, seq: int) -> None:
    ids = torch.randint(1000, 20000, (batch, seq))
    mask = torch.ones_like(ids)
    for head, output in (("masked-lm", "logits"), ("none", "last_hidden_state")):
        time_head(directory, head, output, ids, mask)
        torch.cuda.empty_cache()


def time_head(directory: Path, head: str, output: str, ids, mask) -> None:
    """Each way a call can run, back to back (``do_bench``), with the memory reserved at the peak of one call and
    the graphs' pool: from a graph whatever its outputs, as the engine runs it (eagerly past ``max_output_bytes``),
    and with graphs off."""
    from fastbert import FastBert

    model = FastBert.from_pretrained(directory, device="cuda", head=head)
    default_bound = model.graph_runner.max_output_bytes
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    for way, graphs, bound in (("graph + copy-out", True, 2**62), ("as the engine runs it", True, default_bound),
                               ("eager", False, default_bound)):
        model.reset_graphs()
        torch.cuda.empty_cache()
        model.use_cuda_graphs = graphs
        model.graph_runner.max_output_bytes = bound
        ms = median_ms(lambda: getattr(model(ids, attention_mask=mask), output))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        getattr(model(ids, attention_mask=mask), output)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_reserved() / 2**20
        print(f"{head} {tuple(ids.shape)} {way}: {ms:.3f} ms; peak reserved {peak:.0f} MiB (weights "
              f"{weights / 2**20:.0f}, graph pool {model.graph_memory_bytes() / 2**20:.0f})")


def main() -> None:
    config = architecture("bert-base-cased", tiny=False)
    gemm_widths(32 * 512, config.hidden_size, config.vocab_size)
    with tempfile.TemporaryDirectory() as work:
        directory = save_random_checkpoint(config, Path(work), device="cuda", dtype=torch.float16,
                                           with_tokenizer=False)
        for batch, seq in ((32, 512), (128, 128)):
            model_calls(directory, batch, seq)


if __name__ == "__main__":
    main()
