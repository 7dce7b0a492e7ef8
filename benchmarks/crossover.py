"""Where packing pays: fastbert padded against packed on batches filled to a given share of their padded positions.

Each batch has one row at the full length (so padding to the longest keeps that length) and the others spread
evenly around the length that gives the wanted fill. The crossover is the largest fill at which packed still wins;
auto mode packs below a threshold chosen from it (``pack_when_filled_below`` in ``fastbert.tuning``).
"""

from __future__ import annotations

from .compare import Point, compare
from .inputs import fill_mask_batch

MODEL = "bert-base-cased"
SYSTEMS = ("fastbert-padded", "fastbert-packed")
SEED = 0


def lengths_at_fill(batch: int, seq_len: int, fill: float) -> list[int]:
    """``batch`` lengths, the first ``seq_len``, summing to about ``fill * batch * seq_len``."""
    if batch == 1:
        return [seq_len]
    mean = max(3.0, min(seq_len, (fill * batch * seq_len - seq_len) / (batch - 1)))
    spread = min(mean - 3, seq_len - mean)
    steps = max(batch - 2, 1)
    return [seq_len, *(round(mean + spread * (2 * i / steps - 1)) for i in range(batch - 1))]


def crossover(points: list[dict]) -> float | None:
    """The largest fill where packed ran faster (P50) than padded, or None if it never did."""
    faster = [p["fill"] for p in points if p.get("packed_speedup") is not None and p["packed_speedup"] > 1]
    return max(faster, default=None)


def run(settings) -> dict:
    profile = settings.profile
    checkpoint, config = settings.checkpoints.get(MODEL)
    groups = []
    for batch in profile.crossover_batches:
        for seq_len in profile.crossover_seqs:
            lengths = [lengths_at_fill(batch, seq_len, fill) for fill in profile.crossover_fills]
            points = [Point(fill_mask_batch(config, ls, seed=SEED), max_autotune=False) for ls in lengths]
            result = compare(settings, checkpoint, SYSTEMS, points, reference=SYSTEMS[0])
            for row, ls in zip(result["points"], lengths):
                row["fill"] = round(sum(ls) / (batch * seq_len), 3)
                padded, packed = (row["results"][name] for name in SYSTEMS)
                both = padded.get("status") == "ok" and packed.get("status") == "ok"
                row["packed_speedup"] = padded["p50_ms"] / packed["p50_ms"] if both else None
            groups.append(dict(batch=batch, seq=seq_len, crossover_fill=crossover(result["points"]), **result))
    return dict(model=MODEL, groups=groups, warmup=profile.warmup, iters=profile.iters)
