"""The batch-1 fill-mask latency protocol: bert-base-cased, fp16, seq 8..512, P50/P90, every peer in one run."""

from __future__ import annotations

from .compare import Point, compare
from .floors import weight_read_bytes
from .inputs import fill_mask_batch
from .peers import STANDARD_SYSTEMS

MODEL = "bert-base-cased"


def run(settings) -> dict:
    checkpoint, config = settings.checkpoints.get(MODEL)
    points = [Point(fill_mask_batch(config, [seq], seed=seq), settings.max_autotune_at("protocol", seq))
              for seq in settings.profile.protocol_seqs]
    result = compare(settings, checkpoint, STANDARD_SYSTEMS, points, reference="fastbert")
    weights = weight_read_bytes(config, settings.dtype.itemsize)
    return dict(
        model=MODEL, batch=1, seqs=list(settings.profile.protocol_seqs),
        dtype=str(settings.dtype).removeprefix("torch."), warmup=settings.profile.warmup, iters=settings.profile.iters,
        weight_read_bytes=weights, weight_read_floor_ms=weights / settings.floors["copy_gbps"] / 1e6,
        **result,
    )
