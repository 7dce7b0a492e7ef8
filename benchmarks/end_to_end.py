"""End-to-end timing of whole calls over many texts (pipelines, sentence encoders, rerankers): each system built,
run once untimed, then timed over a few passes, one system after another, within the call's budget."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from .budget import time_limit
from .compare import release
from .results import describe

MIN_LEFT_S = 20.0  # a system starts only with this much of the call's budget left (unless told otherwise)


def time_passes(run: Callable, inputs, passes: int) -> tuple[dict, object]:
    """The median wall time of ``passes`` calls ``run(inputs)`` after an untimed first one (``first_pass_s``: graph
    captures, compiles, autotuning for the shapes these inputs make), and that first call's output."""
    started = time.perf_counter()
    output = run(inputs)
    first_pass_s = time.perf_counter() - started
    walls = []
    for _ in range(passes):
        started = time.perf_counter()
        run(inputs)
        walls.append(time.perf_counter() - started)
    wall = statistics.median(walls)
    return dict(status="ok", wall_s=wall, texts_per_s=len(inputs) / wall, passes=passes,
                first_pass_s=first_pass_s), output


def time_systems(settings, systems: dict[str, Callable[[], Callable]], inputs, passes: int,
                 min_left_s: dict[str, float] | None = None) -> tuple[dict, dict]:
    """(timing per system, first output per system that ran). ``systems``: name -> a builder of the callable to
    time (loading is not timed); ``min_left_s``: budget a system needs to start, where it needs more than
    MIN_LEFT_S (a compile). A system that fails is recorded, and the others still run."""
    timings, outputs = {}, {}
    for name, build in systems.items():
        if settings.budget.left() < (min_left_s or {}).get(name, MIN_LEFT_S):
            timings[name] = dict(status="skipped", reason=settings.budget.spent_reason)
            continue
        try:
            with time_limit(settings.budget.left() - 10.0):
                timings[name], outputs[name] = time_passes(build(), inputs, passes)
        except Exception as e:  # noqa: BLE001 - recorded; the other systems still run
            timings[name] = dict(status="failed", error=describe(e))
        release(settings.device)
    return timings, outputs


def speedups(timings: dict, reference: str = "fastbert") -> dict:
    """``reference``'s texts/s over each other system's, where both ran."""
    ours = timings.get(reference, {})
    return {name: ours["texts_per_s"] / timed["texts_per_s"] for name, timed in timings.items()
            if name != reference and timed.get("status") == "ok" and ours.get("status") == "ok"}
