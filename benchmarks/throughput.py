"""Batched throughput: fixed-shape batches per model, and one realistic mixed-length batch."""

from __future__ import annotations

from .compare import Point, compare
from .floors import fill_mask_flops, floor_ms
from .inputs import fill_mask_batch, mixed_lengths
from .peers import MIXED_SYSTEMS, STANDARD_SYSTEMS

MIXED_MODEL = "bert-base-cased"
SEED = 0


def with_rates(result: dict, config, settings, lengths_of_point) -> dict:
    """Adds sequences/s to every timed result and the compute floor (matmul FLOPs / measured GEMM rate) per point."""
    for row, lengths in zip(result["points"], lengths_of_point):
        row["compute_floor_ms"] = floor_ms(fill_mask_flops(config, lengths), settings.floors)
        for timed in row["results"].values():
            if timed.get("status") == "ok":
                timed["sequences_per_s"] = row["batch"] / timed["p50_ms"] * 1e3
    return result


def run(settings) -> dict:
    profile = settings.profile
    models = {}
    for model in profile.throughput_models:
        checkpoint, config = settings.checkpoints.get(model)
        lengths = [[seq] * profile.throughput_batch for seq in profile.throughput_seqs]
        points = [Point(fill_mask_batch(config, seqs, seed=SEED), settings.max_autotune_at("throughput", seqs[0]))
                  for seqs in lengths]
        result = compare(settings, checkpoint, STANDARD_SYSTEMS, points, reference="fastbert")
        models[model] = with_rates(result, config, settings, lengths)
    return dict(batch=profile.throughput_batch, seqs=list(profile.throughput_seqs), warmup=profile.warmup,
                iters=profile.iters, models=models)


def run_mixed(settings) -> dict:
    """One batch of texts of spread-out lengths, padded to the longest for the peers; fastbert padded and packed.
    The compute floor counts real tokens only (what packing could reach)."""
    profile = settings.profile
    checkpoint, config = settings.checkpoints.get(MIXED_MODEL)
    lengths = mixed_lengths(profile.mixed_batch, *profile.mixed_lengths, seed=SEED)
    point = Point(fill_mask_batch(config, lengths, seed=SEED), settings.max_autotune_at("mixed", max(lengths)))
    result = compare(settings, checkpoint, MIXED_SYSTEMS, [point], reference="fastbert-padded")
    return dict(model=MIXED_MODEL, lengths=lengths, warmup=profile.warmup, iters=profile.iters,
                **with_rates(result, config, settings, [lengths]))
