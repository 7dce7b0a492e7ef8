"""Embeddings/s through the server's batching against the same model called in process, without Ray or HTTP.

    PYTHONPATH=. python -m benchmarks.serve_throughput                  # GPU: random all-MiniLM-L6-v2 architecture
    PYTHONPATH=. python -m benchmarks.serve_throughput --model DIR       # a sentence-transformers checkpoint
    PYTHONPATH=. python -m benchmarks.serve_throughput --cpu            # tiny model, a few seconds: checks the script

In process: ``SentenceEncoder.encode`` over all the texts at each batch size, the best kept. Through the server:
``--clients`` concurrent asyncio clients, each sending ``/embed`` requests of k texts one after another to the
server's request handling (field checks, token counts, the answer as JSON-ready lists) and a token batcher with the
model: first all in this process, then with the batcher and model in a process of their own (``serve_replica``), as
a deployment runs the ingress and a model replica apart; only HTTP and Ray's transport are left out. Needs torch,
triton, transformers, safetensors, tokenizers and numpy; results go to ``benchmarks/results/serve/``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from fastbert.serve.frontend import Frontend
from fastbert.serve.heap import settle
from fastbert.serve.metrics import BatchMetrics
from fastbert.serve.settings import ServeSettings
from fastbert.serve.tasks import load_task

from .checkpoints import architecture, save_random_checkpoint
from .results import DEFAULT_DIR, slug
from .sentences import sentences
from .serve_replica import RemoteReplica

RESULTS_DIR = DEFAULT_DIR / "serve"
# all-MiniLM-L6-v2's encoder: BERT's uncased vocabulary, 6 layers of 384
MINILM_L6 = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
WORDS = ("river", "letter", "garden", "station", "window")


def embedding_texts(count: int, seed: int = 0) -> list[str]:
    """Sentences of 8 to 60 words (median about 20), as real text runs."""
    return [text.replace("[MASK]", WORDS[i % len(WORDS)]) for i, text in enumerate(sentences(count, seed=seed))]


def in_process(encoder, texts: list[str], batch_sizes: list[int], seconds: float) -> list[dict]:
    """Embeddings/s of ``encoder.encode(texts, batch_size=b)`` for each b (it sorts the texts by length)."""
    rows = []
    for batch_size in batch_sizes:
        encoder.encode(texts, batch_size=batch_size)  # warm-up: CUDA graphs and kernels for these shapes
        passes, started = 0, time.perf_counter()
        while passes < 2 or time.perf_counter() - started < seconds:
            encoder.encode(texts, batch_size=batch_size)
            passes += 1
        wall = time.perf_counter() - started
        rows.append(dict(batch_size=batch_size, passes=passes, embeddings_per_s=passes * len(texts) / wall))
    return rows


async def through_server(spec, settings: ServeSettings, submit, batch_snapshot, texts: list[str], *, clients: int,
                         texts_per_request: int, seconds: float, warmup_s: float) -> dict:
    """Embeddings/s of ``clients`` concurrent clients sending requests of ``texts_per_request`` texts to a Frontend
    over ``submit``; ``batch_snapshot()`` gives the replica's batch metrics."""
    frontend = Frontend(spec, settings, submit)
    latencies: list[float] = []
    measuring = False

    async def client(number: int, deadline: float) -> int:
        embedded, offset = 0, number * texts_per_request
        while time.perf_counter() < deadline:
            body = {"inputs": [texts[(offset + i) % len(texts)] for i in range(texts_per_request)]}
            offset += clients * texts_per_request
            started = time.perf_counter()
            rows = await frontend.embed(body)
            if measuring:
                latencies.append(time.perf_counter() - started)
                embedded += len(rows)
        return embedded

    await asyncio.gather(*(client(n, time.perf_counter() + warmup_s) for n in range(clients)))
    measuring, before = True, await batch_snapshot()
    started = time.perf_counter()
    embedded = sum(await asyncio.gather(*(client(n, started + seconds) for n in range(clients))))
    wall = time.perf_counter() - started
    batches = _difference(await batch_snapshot(), before)
    latencies.sort()
    return dict(clients=clients, texts_per_request=texts_per_request, embeddings_per_s=embedded / wall,
                requests=len(latencies), p50_ms=1000 * statistics.median(latencies),
                p99_ms=1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], **batches)


async def in_one_process(task, settings: ServeSettings, texts: list[str], **load) -> dict:
    """The request side, the batcher and the model in this process and its one event loop."""
    metrics = BatchMetrics()
    batcher = settings.batcher(task.run, metrics, task.collect)

    async def snapshot():
        return metrics.snapshot(0)
    try:
        return dict(processes=1, **await through_server(task.spec(), settings, batcher.submit, snapshot, texts,
                                                        **load))
    finally:
        batcher.close()


async def in_two_processes(replica: RemoteReplica, settings: ServeSettings, texts: list[str], **load) -> dict:
    """The request side here, the batcher and the model in the replica's process, as a deployment splits them."""
    try:
        return dict(processes=2, **await through_server(replica.spec, settings, replica.submit, replica.batch_snapshot,
                                                        texts, **load))
    finally:
        replica.detach()


def _difference(after, before) -> dict:
    """Mean tokens and inputs of the batches run between two snapshots of the batch metrics."""
    sums = {m.name: m.values.get((), [0, 0])[-2:] for m in after}
    sums_before = {m.name: m.values.get((), [0, 0])[-2:] for m in before}
    batches = sums["fastbert_batch_tokens"][1] - sums_before["fastbert_batch_tokens"][1]
    tokens = sums["fastbert_batch_tokens"][0] - sums_before["fastbert_batch_tokens"][0]
    inputs = sums["fastbert_batch_inputs"][0] - sums_before["fastbert_batch_inputs"][0]
    return dict(batches=int(batches), mean_batch_tokens=tokens / max(batches, 1),
                mean_batch_inputs=inputs / max(batches, 1))


def random_checkpoint(*, tiny: bool, device: str) -> Path:
    """Random weights (timing does not depend on them) and the bundled uncased tokenizer."""
    config = architecture("bert-base-uncased", tiny=tiny)
    return save_random_checkpoint(config if tiny else replace(config, **MINILM_L6),
                                  Path(tempfile.mkdtemp(prefix="fastbert-serve-bench-")), device=device,
                                  dtype=torch.float32, with_tokenizer=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a checkpoint directory (default: random all-MiniLM-L6-v2 "
                                                   "architecture with the bundled uncased tokenizer)")
    parser.add_argument("--cpu", action="store_true", help="tiny model on the CPU, a few seconds: checks the script")
    parser.add_argument("--dtype", default=None, help="default float16 on CUDA")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--texts-per-request", default="1,8,32", help="comma-separated (default 1,8,32)")
    parser.add_argument("--batch-sizes", default="32,64,128,256,512,1024", help="in-process batch sizes to try")
    parser.add_argument("--texts", type=int, default=4096, help="distinct texts (default 4096)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per point (default 10)")
    parser.add_argument("--max-batch-tokens", type=int, default=None, help="the server's budget (default by device)")
    parser.add_argument("--max-batch-wait-ms", type=float, default=ServeSettings.max_batch_wait_ms)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    device = "cpu" if args.cpu else "cuda"
    if args.cpu:
        args.texts, args.seconds, args.batch_sizes, args.texts_per_request = 128, 0.5, "8,32", "1,8"
    model = args.model or random_checkpoint(tiny=args.cpu, device=device)
    task = load_task("embed", model, device=device, dtype=args.dtype)
    settings = ServeSettings(max_batch_tokens=args.max_batch_tokens, max_batch_wait_ms=args.max_batch_wait_ms,
                             max_concurrent_requests=max(512, args.clients)).on(device)
    texts = embedding_texts(args.texts)
    settle()

    baseline = in_process(task.api, texts, [int(b) for b in args.batch_sizes.split(",")], args.seconds)
    best = max(baseline, key=lambda row: row["embeddings_per_s"])
    load = [dict(clients=args.clients, texts_per_request=int(k), seconds=args.seconds, warmup_s=min(3.0, args.seconds))
            for k in args.texts_per_request.split(",")]
    server = [asyncio.run(in_one_process(task, settings, texts, **point)) for point in load]
    replica = RemoteReplica(str(model), device, args.dtype, settings)
    try:
        server += [asyncio.run(in_two_processes(replica, settings, texts, **point)) for point in load]
    finally:
        replica.close()
    for row in server:
        row["of_in_process_best"] = row["embeddings_per_s"] / best["embeddings_per_s"]
    gpu = torch.cuda.get_device_name() if device == "cuda" else f"cpu {platform.processor() or platform.machine()}"
    result = dict(date=datetime.date.today().isoformat(), device=gpu, model=str(args.model or "random "
                  + ("tiny BERT" if args.cpu else "all-MiniLM-L6-v2 architecture")), dtype=task.spec().dtype,
                  texts=len(texts), words_per_text="8-60", settings=dict(
                      max_batch_tokens=settings.max_batch_tokens, max_batch_wait_ms=settings.max_batch_wait_ms),
                  in_process=baseline, in_process_best=best, server=server,
                  note="server: Frontend, TokenBatcher and model in one process (processes 1), or the model and its "
                       "batcher in a process of their own fed over a pipe as a deployment splits them (processes 2); "
                       "no HTTP, no Ray" + (
                      "; CPU check of the script, no speed claim" if args.cpu else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{slug(gpu)}-serve-throughput-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"in process: best {best['embeddings_per_s']:.0f} embeddings/s at batch {best['batch_size']}")
    for row in server:
        print(f"server in {row['processes']} process(es), {row['clients']} clients x {row['texts_per_request']} texts: "
              f"{row['embeddings_per_s']:.0f} "
              f"embeddings/s ({100 * row['of_in_process_best']:.0f}% of in process), p50 {row['p50_ms']:.1f} ms, "
              f"p99 {row['p99_ms']:.1f} ms, {row['mean_batch_inputs']:.0f} texts and {row['mean_batch_tokens']:.0f} "
              f"tokens a batch")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
