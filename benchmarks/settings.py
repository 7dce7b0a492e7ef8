"""What one call measures: a profile (full, quick, cpu) and the device, dtype and budgets it runs under."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch

from .budget import Budget
from .checkpoints import CheckpointStore
from .floors import measure_floors

PROTOCOL_SEQS = (8, 16, 32, 64, 128, 256, 384, 512)


@dataclass(frozen=True)
class Profile:
    name: str
    device: str
    tiny: bool                              # tiny architectures with the presets' vocabularies: structure, not speed
    warmup: int
    iters: int
    max_point_s: float                      # a point stops early past this many seconds, after at least MIN_RUNS
    time_budget_s: float
    max_autotune: str                       # "off", "protocol" (its max-autotune seqs) or "all"
    max_autotune_budget_s: float
    protocol_seqs: tuple[int, ...]
    max_autotune_seqs: tuple[int, ...]
    throughput_models: tuple[str, ...]
    throughput_batch: int
    throughput_seqs: tuple[int, ...]
    mixed_batch: int
    mixed_lengths: tuple[int, int]          # shortest and longest text of the mixed-length batch
    crossover_batches: tuple[int, ...]      # padded against packed at these batch sizes, longest lengths and fills
    crossover_seqs: tuple[int, ...]
    crossover_fills: tuple[float, ...]
    pipeline_texts: int
    pipeline_batch: int
    pipeline_passes: int
    embed_texts: int                        # texts of lengths spread log-uniformly over embed_lengths (tokens)
    embed_lengths: tuple[int, int]
    rerank_documents: int                   # documents against one query, lengths over rerank_lengths (tokens)
    rerank_lengths: tuple[int, int]
    encoder_batch: int                      # batch_size of every system in the embed and rerank sections
    encoder_passes: int                     # timed passes over all texts, after an untimed one
    classify_seqs: tuple[int, ...]          # batch-1 sequence lengths of the classification section
    classify_batch: int
    classify_batch_seqs: tuple[int, ...]
    ops_batches: tuple[int, ...]
    scale_encoder_shapes: tuple[tuple[int, int], ...]  # (batch, seq) of the encoder-only and all-logits workloads
    scale_logits_shapes: tuple[tuple[int, int], ...]
    scale_device_seqs: tuple[int, ...]                # batch-1 seqs fed from device tensors
    ops_seqs: tuple[int, ...]
    ops_shape: dict = field(default_factory=lambda: dict(hidden=768, heads=12, intermediate=3072, vocab=28996))
    ops_reps: int = 20                      # calls per captured graph: per-call launch cost vanishes
    ops_iters: int = 30
    copy_mib: int = 1024
    gemm_n: int = 8192
    coldstart_seq: int = 128


FULL = Profile(
    name="full", device="cuda", tiny=False, warmup=20, iters=200, max_point_s=4.0, time_budget_s=420.0,
    max_autotune="protocol", max_autotune_budget_s=150.0,
    protocol_seqs=PROTOCOL_SEQS, max_autotune_seqs=(8, 128, 512),
    throughput_models=("bert-base-cased", "bert-large-cased", "roberta-base"), throughput_batch=32,
    throughput_seqs=(128, 512), mixed_batch=32, mixed_lengths=(8, 512),
    crossover_batches=(4, 32), crossover_seqs=(128, 512), crossover_fills=(0.4, 0.6, 0.7, 0.8, 0.9, 1.0),
    pipeline_texts=256, pipeline_batch=32, pipeline_passes=3,
    embed_texts=10_000, embed_lengths=(8, 512), rerank_documents=1000, rerank_lengths=(16, 480), encoder_batch=32,
    encoder_passes=3, classify_seqs=PROTOCOL_SEQS, classify_batch=32, classify_batch_seqs=(128, 512),
    ops_batches=(1, 32), ops_seqs=PROTOCOL_SEQS,
    scale_encoder_shapes=((32, 128), (32, 512), (128, 128)), scale_logits_shapes=((32, 512),),
    scale_device_seqs=(8, 128, 512),
)
QUICK = replace(
    FULL, name="quick", warmup=10, iters=50, max_point_s=2.0, time_budget_s=150.0, max_autotune="off",
    protocol_seqs=(8, 128, 512), throughput_models=("bert-base-cased",), pipeline_passes=1, ops_seqs=(8, 128, 512),
    crossover_batches=(32,), crossover_seqs=(512,), crossover_fills=(0.5, 0.8, 1.0),
    embed_texts=2000, rerank_documents=300, encoder_passes=1, classify_seqs=(8, 128, 512),
)
CPU = replace(
    FULL, name="cpu", device="cpu", tiny=True, warmup=1, iters=3, max_point_s=2.0, time_budget_s=180.0,
    max_autotune="off", protocol_seqs=(8, 16), throughput_models=("roberta-base",), throughput_batch=2,
    throughput_seqs=(16,), mixed_batch=4, mixed_lengths=(8, 32), crossover_batches=(4,), crossover_seqs=(16,),
    crossover_fills=(0.5, 1.0), pipeline_texts=8, pipeline_batch=4,
    pipeline_passes=1, embed_texts=12, embed_lengths=(8, 32), rerank_documents=6, rerank_lengths=(8, 24),
    encoder_batch=4, encoder_passes=1, classify_seqs=(8, 16), classify_batch=2, classify_batch_seqs=(16,),
    ops_batches=(1, 2), ops_seqs=(8,), scale_encoder_shapes=((2, 16),), scale_logits_shapes=((2, 16),),
    scale_device_seqs=(8,),
    ops_shape=dict(hidden=64, heads=2, intermediate=128, vocab=1000), ops_reps=1, ops_iters=2,
    copy_mib=16, gemm_n=256, coldstart_seq=16,
)
PROFILES = {p.name: p for p in (FULL, QUICK, CPU)}


class Settings:
    """A profile bound to a device: dtype, budgets, and the floors measured once per call."""

    def __init__(self, profile: Profile, work_dir: Path, minilm: Path | None = None):
        """``work_dir``: where this call's checkpoints go; the caller owns and removes it. ``minilm``: the real
        all-MiniLM-L6-v2 (a sentence-transformers directory) for the embed section, else the installed one."""
        self.profile = profile
        self.work_dir = work_dir
        self.minilm = minilm
        self.device = torch.device(profile.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("no CUDA device: run with --cpu for the CPU smoke run")
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.budget = Budget(profile.time_budget_s, profile.max_autotune_budget_s)
        self.checkpoints = CheckpointStore(work_dir, tiny=profile.tiny, device=self.device, dtype=self.dtype)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    @cached_property
    def floors(self) -> dict:
        return measure_floors(self)

    def max_autotune_at(self, section: str, seq: int) -> bool:
        mode = self.profile.max_autotune
        return mode == "all" or (mode == "protocol" and section == "protocol" and seq in self.profile.max_autotune_seqs)
