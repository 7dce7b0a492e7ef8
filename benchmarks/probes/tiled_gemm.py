"""The tiled Triton GEMM against cuBLAS at 65-512 rows, alone and in batch-1 classification (bert-base, fp16).

    PYTHONPATH=. python3 -m benchmarks.probes.tiled_gemm [--rows 128,256,384,512] [--json out.json]

First every candidate tile shape and cuBLAS each run BERT-base's four projections, 20 calls back to back in one
CUDA graph, launched as dependents as in a layer; then the output projection and FFN-down with their LayerNorm,
through cuBLAS, the tiled GEMM, and the tiled GEMM split over K into the LayerNorm. Then the best shape per GEMM
drives whole batch-1 classification calls with the tiled GEMM off, on with dependent launch to 128 tokens, on to
512, and on to 512 with K split at each of K_SLICES, beside transformers SDPA in a CUDA graph: P50 / P90 ms over
200 calls, and the logits' largest difference from the tiled-off call.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from benchmarks.checkpoints import architecture, save_random_checkpoint
from benchmarks.inputs import fill_mask_batch
from benchmarks.peers import load_transformers, transformers_graph_runner
from benchmarks.timing import graphed, time_calls
from fastbert import tuning
from fastbert.ops import tiled_linear as tiled_module
from fastbert.ops.layer_norm import layer_norm
from fastbert.ops.linear import linear_reference
from fastbert.ops.tiled_linear import Tiles, tiled_linear, tiled_split_k_linear

GEMMS = {"qkv": (2304, 768, False), "out": (768, 768, False), "up": (3072, 768, True), "down": (768, 3072, False)}
REPS = 20
CANDIDATES = [Tiles(*shape) for shape in itertools.product((64, 128), (64, 128), (64, 128), (4, 8), (3, 4))
              if (shape[0] + shape[1]) * shape[2] * 2 * shape[4] <= 200 * 1024]  # fp16 operand stages in smem
SEQS = (64, 128, 192, 256, 384, 512)
WARMUP, ITERS = 20, 200  # per batch-1 point, as the classification section of the harness times it
SPLITS = (2, 3, 4, 6)         # slices of K into the LayerNorm
K_SLICES = (1536, 768, 384)   # the model's tiled_k_slice: FFN-down in 2, 4, 8 slices; at 384 the output projection in 2


def per_gemm_us(fn, device) -> float:
    replay = graphed(fn, device, reps=REPS)
    return time_calls(replay, device, warmup=5, iters=30).p50_ms * 1000 / REPS


def cublas(x, weight, bias, gelu):
    return (lambda: torch._addmm_activation(bias, x, weight.t(), use_gelu=True)) if gelu else \
        (lambda: F.linear(x, weight, bias))


def sweep(rows_list, device) -> dict:
    """{gemm: {rows: {"cublas": us, "best": Tiles, "best_us": us, "all": {...}}}}"""
    results = {}
    for name, (n, k, gelu) in GEMMS.items():
        weight = torch.randn(n, k, device=device, dtype=torch.float16) / k ** 0.5
        bias = torch.randn(n, device=device, dtype=torch.float16)
        results[name] = {}
        for rows in rows_list:
            x = torch.randn(rows, k, device=device, dtype=torch.float16)
            expected = linear_reference(x.float(), weight.float(), bias.float(), gelu=gelu)
            row = {"cublas": per_gemm_us(cublas(x, weight, bias, gelu), device), "all": {}}
            for tile in CANDIDATES:
                try:
                    got = tiled_linear(x, weight, bias, gelu=gelu, tile=tile)
                    torch.cuda.synchronize()
                except Exception as error:  # a shape the compiler refuses (shared memory): skipped
                    row["all"][str(tuple(tile))] = f"refused: {type(error).__name__}"
                    continue
                error_max = (got.float() - expected).abs().max().item()
                assert error_max < 0.05, (name, rows, tile, error_max)
                row["all"][str(tuple(tile))] = per_gemm_us(
                    lambda tile=tile: tiled_linear(x, weight, bias, gelu=gelu, tile=tile), device)
            timed = {t: us for t, us in row["all"].items() if isinstance(us, float)}
            best = min(timed, key=timed.get)
            row["best"], row["best_us"] = best, timed[best]
            results[name][rows] = row
            print(f"{name:5s} rows {rows:4d}: cuBLAS {row['cublas']:6.2f} us, tiled best {timed[best]:6.2f} us {best}",
                  flush=True)
    return results


def picker(results):
    """tiles() from the sweep: the best shape of the nearest swept row count at or above ``rows``."""
    by_shape = {(n, k): name for name, (n, k, _) in GEMMS.items()}
    by_name = {str(tuple(tile)): tile for tile in CANDIDATES}  # the sweep's keys, as JSON holds them

    def tiles(rows, n, k):
        table = results[by_shape[(n, k)]]
        swept = sorted(table)
        nearest = next((r for r in swept if r >= rows), swept[-1])
        return by_name[table[nearest]["best"]]
    return tiles


def into_norm(rows_list, device, best_tiles) -> dict:
    """{gemm: {rows: {"cublas": us, "tiled": us, "split 2": us, ...}}}: the output projection and FFN-down with
    the LayerNorm that follows them (bias and residual in it), as the layer runs them."""
    results = {}
    for name in ("out", "down"):
        n, k, _ = GEMMS[name]
        weight = torch.randn(n, k, device=device, dtype=torch.float16) / k ** 0.5
        bias, gamma, beta = (torch.randn(n, device=device, dtype=torch.float16) for _ in range(3))
        results[name] = {}
        for rows in rows_list:
            x = torch.randn(rows, k, device=device, dtype=torch.float16)
            residual = torch.randn(rows, n, device=device, dtype=torch.float16)
            tile = best_tiles(rows, n, k)
            ways = {"cublas": lambda: layer_norm(F.linear(x, weight), gamma, beta, 1e-12, residual=residual,
                                                 x_bias=bias),
                    "tiled": lambda: layer_norm(tiled_linear(x, weight, tile=tile), gamma, beta, 1e-12,
                                                residual=residual, x_bias=bias)}
            for splits in SPLITS:
                ways[f"split {splits}"] = lambda splits=splits: layer_norm(
                    tiled_split_k_linear(x, weight, splits, tile=tile), gamma, beta, 1e-12, residual=residual,
                    x_bias=bias, parts=True, out_dtype=torch.float16)
            expected = ways["cublas"]().float()
            row = {}
            for label, way in ways.items():
                assert (way().float() - expected).abs().max().item() < 0.05, (name, rows, label)
                row[label] = per_gemm_us(way, device)
            results[name][rows] = row
            print(f"{name:5s} rows {rows:4d} into LayerNorm: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()),
                  flush=True)
    return results


def classification(directory: Path, device, tilings) -> dict:
    """{seq: {system: timing}} of batch-1 calls; each tuning's model is loaded once and runs every length."""
    from fastbert import FastBert

    settings = SimpleNamespace(device=device, dtype=torch.float16)
    config = architecture("bert-base-cased", tiny=False)
    batches = {seq: fill_mask_batch(config, [seq], seed=seq) for seq in SEQS}
    out = {seq: {} for seq in SEQS}
    hf = load_transformers("sdpa", "AutoModelForSequenceClassification")(directory, settings)
    for seq, batch in batches.items():
        peer = transformers_graph_runner(hf, batch, settings)
        out[seq]["hf-sdpa-cudagraph"] = time_calls(lambda: peer(batch.input_ids, batch.attention_mask, None), device,
                                                   warmup=WARMUP, iters=ITERS).as_dict()
    del hf
    reference = {}
    for label, tuned in tilings.items():
        tuning.forced = tuned
        model = FastBert.from_pretrained(directory, device=device, dtype=torch.float16)
        for seq, batch in batches.items():
            ids, mask = batch.input_ids, batch.attention_mask
            logits = model(ids, attention_mask=mask).logits.float()
            reference.setdefault(seq, logits)
            timing = time_calls(lambda: model(ids, attention_mask=mask).logits, device, warmup=WARMUP, iters=ITERS)
            out[seq][label] = timing.as_dict() | {"max_logit_diff": (logits - reference[seq]).abs().max().item()}
    tuning.forced = None
    for seq, row in out.items():
        print(f"seq {seq:4d}: " + ", ".join(f"{k} {v['p50_ms']:.3f}/{v['p90_ms']:.3f}" for k, v in row.items()),
              flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="128,256,384,512")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device("cuda")
    rows_list = [int(r) for r in args.rows.split(",")]
    on = dataclasses.replace(tuning.HOPPER, dependent_launch_tokens=512, tiled_rows=512)
    tuning.forced = on
    results = sweep(rows_list, device)
    tiled_module.tiles = picker(results)
    norm_results = into_norm(rows_list, device, tiled_module.tiles)
    no_split = 1 << 30
    tilings = {"tiled off": dataclasses.replace(tuning.HOPPER, tiled_rows=0),
               "tiled, dependent to 128": dataclasses.replace(tuning.HOPPER, tiled_rows=512, tiled_k_slice=no_split),
               "tiled, dependent to 512": dataclasses.replace(on, tiled_k_slice=no_split)}
    for k_slice in K_SLICES:
        tilings[f"tiled, dependent to 512, K slices of {k_slice}"] = dataclasses.replace(on, tiled_k_slice=k_slice)
    with tempfile.TemporaryDirectory() as root:
        directory = save_random_checkpoint(
            dataclasses.replace(architecture("bert-base-cased", tiny=False), id2label={0: "a", 1: "b", 2: "c"},
                                label2id={"a": 0, "b": 1, "c": 2}),
            Path(root) / "classifier", device=device, dtype=torch.float16, with_tokenizer=False,
            head="sequence-classification")
        model_rows = classification(directory, device, tilings)
    if args.json:
        args.json.write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                                         "sweep": results, "into_norm": norm_results,
                                         "classification": model_rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
