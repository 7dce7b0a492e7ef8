"""Where a pass of ``SentenceEncoder.encode`` over many texts goes: wall time per pass, graph captures per pass, and
the host functions of one pass by their own time (the embed section's texts: log-uniform 8-512 tokens, cut at 256).

    PYTHONPATH=. python3 -m benchmarks.probes.sentence_encoder_passes MODEL_DIR [--texts 2000,10000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from benchmarks.inputs import mixed_lengths
from benchmarks.sentences import texts_of_lengths
from fastbert import SentenceEncoder
from fastbert.graphs import GraphRunner


def counting_captures():
    """Wraps GraphRunner._capture so that captures are counted; returns the counter."""
    counter = {"captures": 0}
    capture = GraphRunner._capture

    def counted(self, *args, **kwargs):
        counter["captures"] += 1
        return capture(self, *args, **kwargs)
    GraphRunner._capture = counted
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--texts", default="2000,10000")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    counter = counting_captures()
    encoder = SentenceEncoder.from_pretrained(args.model, device="cuda", dtype=torch.float16)
    for count in (int(n) for n in args.texts.split(",")):
        texts = texts_of_lengths(mixed_lengths(count, 8, 512, seed=0), seed=0)
        for index in range(3):
            before = counter["captures"]
            started = time.perf_counter()
            encoder.encode(texts, batch_size=args.batch_size)
            torch.cuda.synchronize()
            print(f"{count} texts, pass {index}: {time.perf_counter() - started:.3f} s, "
                  f"{counter['captures'] - before} captures, {len(encoder.model.graph_runner.graphs)} graphs held")
        profile = cProfile.Profile()
        profile.enable()
        encoder.encode(texts, batch_size=args.batch_size)
        torch.cuda.synchronize()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
