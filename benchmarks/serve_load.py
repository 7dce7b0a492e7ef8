"""Load through the HTTP server: concurrent clients on loopback, each sending its requests one after another, every
answer kept with its status and latency.

    python -m benchmarks.serve_load [--task embed|fill-mask]   # CPU: a tiny random checkpoint on a local Ray

The CPU run measures the server's own overhead and that no answer is lost or wrong under load, on a model too small
for its time to matter; it says nothing of GPU speed (``benchmarks/serve_throughput.py`` measures that).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .results import DEFAULT_DIR
from .sentences import sentences

RESULTS_DIR = DEFAULT_DIR / "serve"


@dataclass
class Reply:
    client: int
    request: int        # its index among the client's requests
    status: int         # HTTP status; 0 when no answer came before the timeout or the connection failed
    seconds: float
    body: object        # the JSON answer, or the error's text


@dataclass
class LoadReport:
    replies: list[Reply]
    wall_s: float
    inputs: int         # texts (or pairs) sent in all

    def summary(self) -> dict:
        latencies = sorted(r.seconds for r in self.replies if r.status == 200)
        statuses: dict[str, int] = {}
        for reply in self.replies:
            statuses[str(reply.status)] = statuses.get(str(reply.status), 0) + 1
        return dict(requests=len(self.replies), statuses=statuses, wall_s=self.wall_s,
                    requests_per_s=len(self.replies) / self.wall_s, inputs_per_s=self.inputs / self.wall_s,
                    p50_ms=1000 * _quantile(latencies, 0.50), p99_ms=1000 * _quantile(latencies, 0.99),
                    max_ms=1000 * latencies[-1] if latencies else None)


def mixed_bodies(task: str, clients: int, requests_per_client: int, *, max_texts: int = 4,
                 seed: int = 0) -> list[list[dict]]:
    """Each client's request bodies: 1 to ``max_texts`` sentences of 8 to 60 words (with one mask for fill-mask)."""
    rng = random.Random(seed)
    pool = sentences(200, seed=seed)
    if task != "fill-mask":
        pool = [text.replace("[MASK]", rng.choice(("river", "letter", "garden"))) for text in pool]
    return [[{"inputs": rng.sample(pool, rng.randint(1, max_texts))} for _ in range(requests_per_client)]
            for _ in range(clients)]


async def run_load(url: str, bodies: list[list[dict]], *, timeout_s: float = 60.0) -> LoadReport:
    """POSTs each client's bodies to ``url`` in turn, all clients at once."""
    import aiohttp

    async def client(session, number: int, requests: list[dict]) -> list[Reply]:
        replies = []
        for index, body in enumerate(requests):
            started = time.perf_counter()
            try:
                async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                    text = await response.text()
                    answer = json.loads(text) if response.status == 200 else text
                    replies.append(Reply(number, index, response.status, time.perf_counter() - started, answer))
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                replies.append(Reply(number, index, 0, time.perf_counter() - started, repr(error)))
        return replies

    connector = aiohttp.TCPConnector(limit=len(bodies))
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        per_client = await asyncio.gather(*(client(session, n, requests) for n, requests in enumerate(bodies)))
        wall = time.perf_counter() - started
    inputs = sum(len(body["inputs"]) if isinstance(body["inputs"], list) else 1 for b in bodies for body in b)
    return LoadReport([reply for replies in per_client for reply in replies], wall, inputs)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 else values[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="embed", choices=("embed", "fill-mask"),
                        help="embed: mean-pooled embeddings of the random encoder; default embed")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    import ray
    import torch
    from ray import serve

    from fastbert.serve.app import APP_NAME, application

    from .checkpoints import TINY_ARCHITECTURE, architecture, save_random_checkpoint

    task = args.task
    checkpoint = save_random_checkpoint(architecture("bert-base-uncased", tiny=True),
                                        Path(tempfile.mkdtemp(prefix="fastbert-serve-load-")), device="cpu",
                                        dtype=torch.float32, with_tokenizer=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(application(str(checkpoint), task=task, device="cpu"), name=APP_NAME, route_prefix="/")
        url = f"http://127.0.0.1:{args.port}/{task}"
        asyncio.run(run_load(url, mixed_bodies(task, 4, 5, seed=1)))  # warm-up
        report = asyncio.run(run_load(url, mixed_bodies(task, args.clients, args.requests)))
    finally:
        serve.shutdown()
        ray.shutdown()
    result = dict(
        measurement="CPU, tiny random checkpoint: the server's overhead and its answers under load, not GPU speed",
        date=datetime.date.today().isoformat(), machine=platform.processor() or platform.machine(),
        cpu_cores=os.cpu_count(),
        task=task, model=dict(TINY_ARCHITECTURE, vocab_size=30522, preset="bert-base-uncased"), device="cpu",
        replicas=1, clients=args.clients, requests_per_client=args.requests, texts_per_request="1-4",
        words_per_text="8-60", **report.summary())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cpu-tiny-{task}-load-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
