"""Runs systems over the same batches in one process: timings, prepare (compile/capture) times, and each system's
logits at the [MASK] positions checked against a reference system's."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass

import torch

from .inputs import FillMaskBatch
from .peers import COMPILE_RESERVE_S, PEERS, NotApplicable, Peer
from .results import describe
from .timing import time_calls

POINT_RESERVE_S = 10.0
# max |logit difference| allowed, relative to max(1, max |reference logit|): fp16 rounding over 12-24 layers
TOLERANCE = {torch.float16: 2e-2, torch.bfloat16: 5e-2, torch.float32: 1e-3}


@dataclass(frozen=True)
class Point:
    batch: FillMaskBatch
    max_autotune: bool  # whether torch.compile max-autotune may run here (its compiles are capped)


def release(device: torch.device) -> None:
    """Frees what the last system held, so the next one starts with the GPU's memory to itself."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def mask_logits(logits: torch.Tensor, logits_at: torch.Tensor) -> torch.Tensor:
    """[N, V] logits at the mask positions, from a system's [N, V] or [B, S, V] output."""
    full = logits.dim() == 3
    return (logits[logits_at.to(logits.device)] if full else logits).float().cpu()


def skip_reason(settings, peer: Peer, point: Point) -> str | None:
    if peer.max_autotune:
        if settings.profile.max_autotune == "off":
            return "max-autotune is off in this call (--max-autotune)"
        if not point.max_autotune:
            return "max-autotune does not run at this point (--max-autotune)"
        if settings.budget.max_autotune_left() <= 0:
            return f"max-autotune compile budget ({settings.budget.max_autotune_seconds:.0f} s) spent"
    if settings.budget.left() < (COMPILE_RESERVE_S if peer.compiles else POINT_RESERVE_S):
        return settings.budget.spent_reason
    return None


def measure(settings, peer: Peer, model, batch: FillMaskBatch, reference: torch.Tensor | None):
    """(result, logits at the mask positions) for one system at one batch."""
    inputs = (batch.input_ids, batch.attention_mask, batch.logits_at)
    started = time.perf_counter()
    try:
        run = peer.make_runner(model, batch, settings)
    finally:  # a compile that fails still spent its time
        prepare_s = time.perf_counter() - started
        if peer.max_autotune:
            settings.budget.max_autotune_spent += prepare_s
    logits = mask_logits(run(*inputs), batch.logits_at)
    peak = {}
    if settings.on_cuda:  # what the system holds at its peak during one call: weights, graph pools, activations
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        run(*inputs)
        torch.cuda.synchronize()
        peak = dict(peak_memory_mib=round(torch.cuda.max_memory_reserved() / 2**20, 1))
    profile = settings.profile
    timing = time_calls(lambda: run(*inputs), settings.device, warmup=profile.warmup, iters=profile.iters,
                        max_seconds=profile.max_point_s)
    result = dict(status="ok", **timing.as_dict(), prepare_s=round(prepare_s, 3), **peak)
    if reference is not None:
        result["max_abs_diff"] = (logits - reference).abs().max().item()
    return result, logits


def compare(settings, checkpoint, systems: tuple[str, ...], points: list[Point], reference: str,
            peers: dict[str, Peer] = PEERS) -> dict:
    """Every system at every point. ``reference`` (run first) supplies the logits the others are checked against.
    ``peers``: where the systems are found (the fill-mask peers by default)."""
    assert systems[0] == reference, "the reference system runs first"
    rows = [dict(batch=p.batch.size, seq=p.batch.seq_len, tokens=sum(p.batch.lengths), results={}) for p in points]
    reference_logits: list[torch.Tensor | None] = [None] * len(points)
    # no_grad, as torch.compile and CUDA-graph capture are usually run: inference-mode tensors refuse in-place updates
    # outside inference mode
    with torch.no_grad():
        for name in systems:
            peer, model, load_error = peers[name], None, None
            for index, (point, row) in enumerate(zip(points, rows)):
                reason = skip_reason(settings, peer, point)
                if reason is not None:
                    row["results"][name] = dict(status="skipped", reason=reason)
                    continue
                if model is None and load_error is None:
                    try:
                        model = peer.load(checkpoint, settings)
                    except Exception as e:  # noqa: BLE001 - a peer that cannot load is a result, not a crash
                        load_error = f"loading: {describe(e)}"
                if load_error is not None:
                    row["results"][name] = dict(status="failed", error=load_error)
                    continue
                try:
                    result, logits = measure(settings, peer, model, point.batch, reference_logits[index])
                    if name == reference:
                        reference_logits[index] = logits
                except NotApplicable as e:
                    result = dict(status="n/a", reason=str(e))
                except Exception as e:  # noqa: BLE001 - a failing peer (compile error, OOM) is recorded, the run goes on
                    result = dict(status="failed", error=describe(e))
                row["results"][name] = result
            del model
            release(settings.device)
    return dict(
        systems={name: peers[name].description for name in systems},
        reference=reference,
        points=rows,
        correctness=correctness(rows, systems, reference, settings.dtype, reference_logits),
        speedup_p90=speedups(rows, systems, reference),
    )


def correctness(rows, systems, reference, dtype, reference_logits) -> dict:
    scale = max((max(1.0, t.abs().max().item()) for t in reference_logits if t is not None), default=1.0)
    tolerance = TOLERANCE[dtype] * scale
    report = dict(reference=reference, tolerance=tolerance, systems={})
    for name in systems[1:]:
        diffs = [row["results"][name]["max_abs_diff"] for row in rows if "max_abs_diff" in row["results"][name]]
        if diffs:
            report["systems"][name] = dict(max_abs_diff=max(diffs), ok=max(diffs) <= tolerance)
    return report


def speedups(rows, systems, reference) -> dict:
    """peer P90 / reference P90, per point and the mean over the points where both ran."""
    table = {}
    for name in systems[1:]:
        per_point = []
        for row in rows:
            ours, theirs = row["results"][reference], row["results"][name]
            both = ours.get("status") == "ok" and theirs.get("status") == "ok"
            per_point.append(theirs["p90_ms"] / ours["p90_ms"] if both else None)
        measured = [r for r in per_point if r is not None]
        table[name] = dict(per_point=per_point, mean=statistics.fmean(measured) if measured else None)
    return table
