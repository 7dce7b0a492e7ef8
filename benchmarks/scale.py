"""Work where every token's output is needed, and inputs already on the GPU: the encoder's last hidden state at
large batches and the MLM logits at every position against torch.compile, and batch-1 fill-mask fed from device
tensors against the same calls fed from the host."""

from __future__ import annotations

from .compare import Point, compare
from .inputs import fill_mask_batch

MODEL = "bert-base-cased"
SEED = 0


def points(settings, shapes) -> list[Point]:
    return [Point(fill_mask_batch(settings.checkpoints.get(MODEL)[1], [seq] * batch, seed=SEED), False)
            for batch, seq in shapes]


def run(settings) -> dict:
    profile = settings.profile
    checkpoint, _ = settings.checkpoints.get(MODEL)
    return dict(
        model=MODEL, warmup=profile.warmup, iters=profile.iters,
        encoder=compare(settings, checkpoint, ("fastbert-encoder", "compile-encoder"),
                        points(settings, profile.scale_encoder_shapes), reference="fastbert-encoder"),
        all_logits=compare(settings, checkpoint, ("fastbert-all-logits", "compile-reduce-overhead"),
                           points(settings, profile.scale_logits_shapes), reference="fastbert-all-logits"),
        device_inputs=compare(settings, checkpoint, ("fastbert", "fastbert-device-inputs"),
                              points(settings, [(1, seq) for seq in profile.scale_device_seqs]), reference="fastbert"),
    )
