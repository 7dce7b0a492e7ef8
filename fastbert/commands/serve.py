"""``fastbert serve MODEL``: the HTTP server on Ray Serve, on a local Ray instance or an existing cluster.

It runs until Ctrl-C or SIGTERM, then removes what it started: the application (and Serve, when Serve was not
running before), and the local Ray instance when it started one.
"""

from __future__ import annotations

import argparse
import signal
import threading

from ..errors import FastBertError
from ..hub import CheckpointSource
from ..serve.settings import CPU_BATCH_TOKENS, CUDA_BATCH_TOKENS, ServeSettings
from ..serve.tasks import TASKS

DEFAULTS = ServeSettings()


def register(commands) -> None:
    serve = commands.add_parser(
        "serve", help="serve a model over HTTP on Ray Serve",
        description="Serve MODEL over HTTP with the routes of text-embeddings-inference (/embed, /rerank, /predict, "
                    "/tokenize, /info, /health, /metrics, /v1/embeddings) and fastbert's /fill-mask and /ner. Needs "
                    "Ray: pip install 'fastbert[serve]'.")
    serve.add_argument("model", help="hub id or local checkpoint directory (on a cluster: one every node can read)")
    serve.add_argument("--task", default="embed", choices=tuple(TASKS), help="default embed")
    serve.add_argument("--device", default=None, help="cuda or cpu (default cuda when the cluster has GPUs)")
    serve.add_argument("--dtype", default=None, choices=("float16", "bfloat16", "float32"),
                       help="default float16 on CUDA, float32 on CPU")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for "
                                                           "every interface)")
    serve.add_argument("--port", type=int, default=8000, help="default 8000")
    serve.add_argument("--replicas", default=None, type=_replicas,
                       help="model replicas, a number or 'auto' to autoscale (default one per GPU, one on the CPU)")
    serve.add_argument("--gpus-per-replica", type=float, default=1, help="default 1")
    serve.add_argument("--max-batch-tokens", type=int, default=None,
                       help=f"tokens in one forward pass (default {CUDA_BATCH_TOKENS} on CUDA, {CPU_BATCH_TOKENS} on "
                            f"the CPU)")
    serve.add_argument("--max-batch-wait-ms", type=float, default=DEFAULTS.max_batch_wait_ms,
                       help=f"longest a request waits for others to join its batch (default "
                            f"{DEFAULTS.max_batch_wait_ms:g})")
    serve.add_argument("--max-client-batch-size", type=int, default=DEFAULTS.max_client_batch_size,
                       help=f"inputs in one request, more is answered 413 (default {DEFAULTS.max_client_batch_size})")
    serve.add_argument("--max-concurrent-requests", type=int, default=DEFAULTS.max_concurrent_requests,
                       help=f"requests in flight per model replica, more are answered 429 (default "
                            f"{DEFAULTS.max_concurrent_requests})")
    serve.add_argument("--address", default=None, help="an existing Ray cluster to deploy onto (ray://... or "
                                                        "host:port); default: start a local Ray instance")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    if args.address is None:
        CheckpointSource(args.model)  # the local replicas will read these files: a missing model fails here, at once
    try:
        import ray
        from ray import serve

        from ..serve.app import APP_NAME, application
    except ImportError as e:
        raise FastBertError(f"fastbert serve needs Ray Serve ({e}): pip install 'fastbert[serve]'") from None
    settings = ServeSettings(max_batch_tokens=args.max_batch_tokens, max_batch_wait_ms=args.max_batch_wait_ms,
                             max_client_batch_size=args.max_client_batch_size,
                             max_concurrent_requests=args.max_concurrent_requests)
    ray.init(address=args.address, include_dashboard=False if args.address is None else None)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # after ray.init, whose own handlers would abort the process
        signal.signal(signum, lambda *_: stop.set())
    serve_was_running = args.address is not None and _serve_running(serve)
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        app = application(args.model, task=args.task, device=args.device, dtype=args.dtype, replicas=args.replicas,
                          gpus_per_replica=args.gpus_per_replica, settings=settings)
        try:
            serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        except RuntimeError as e:  # a replica failed to start; Ray logged its traceback
            raise FastBertError(f"{e}; the replicas' logs are in Ray's session directory "
                                f"(/tmp/ray/session_latest/logs/serve/ on the head node by default)") from None
        print(f"fastbert serve: {args.task} with {args.model} at http://{args.host}:{args.port} "
              f"(Ctrl-C or SIGTERM stops)", flush=True)
        while not stop.wait(timeout=1.0):
            pass
    finally:
        print("fastbert serve: shutting down", flush=True)
        if serve_was_running:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
        ray.shutdown()  # a local instance this command started stops with it; a cluster's driver just disconnects


def _serve_running(serve) -> bool:
    status = serve.status()  # empty, without starting anything, where Serve does not run
    return bool(status.proxies or status.applications)


def _replicas(value: str):
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of replicas or 'auto', got {value!r}")
    return count
