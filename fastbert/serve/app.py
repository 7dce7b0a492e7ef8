"""fastbert on Ray Serve: a model deployment (one task model and its batcher per replica, by default one replica per
GPU) behind an ingress deployment (the HTTP routes, validation and token counts).

The ingress holds no model, so a model replica that dies mid-request costs its requests a 503 that the ingress
answers, rather than a dropped connection. ``application(...)`` builds the app for ``serve.run``; ``build(args)`` is the
same for a Serve config file (``import_path: fastbert.serve.app:build``) or ``serve run fastbert.serve.app:build
model=...``.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields

import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.handle import DeploymentHandle

from .api import build_app
from .batcher import Overloaded
from .errors import UNAVAILABLE, RequestError
from .frontend import Frontend
from .heap import settle
from .metrics import BatchMetrics, RequestMetrics, merge, render
from .settings import ServeSettings
from .tasks import TASKS, Item, TaskSpec, load_task

APP_NAME = "fastbert"
CONTROL_TIMEOUT_S = 10  # /health and /metrics answer within this, even while a model replica restarts


@serve.deployment
class Model:
    """One task model and the batcher that feeds it."""

    def __init__(self, model: str, task: str, device: str | None, dtype: str | None, settings: ServeSettings):
        self.task = load_task(task, model, device=device, dtype=dtype)
        self.metrics = BatchMetrics()
        self.batcher = settings.batcher(self.task.run, self.metrics, self.task.collect)
        settle()

    def spec(self) -> TaskSpec:
        return self.task.spec()

    async def submit(self, items: list[Item], tokens: list[int]) -> list | Overloaded:
        try:
            return await self.batcher.submit(items, tokens)
        except Overloaded as refusal:
            return refusal  # returned, not raised: Ray would log each refusal's traceback, just when load peaks

    def metrics_snapshot(self):
        return self.metrics.snapshot(self.batcher.in_flight)

    def check_health(self) -> None:
        """Ray Serve restarts a replica whose batching loop stopped."""
        if self.batcher.failed is not None:
            raise RuntimeError(f"the batching loop stopped: {self.batcher.failed!r}")

    def __del__(self):
        self.batcher.close()


@serve.deployment
@serve.ingress()
class Ingress:
    """The HTTP routes; each request's inputs go to a model replica in one call."""

    async def __init__(self, model: DeploymentHandle, settings: ServeSettings):
        self.model = model
        self.metrics = RequestMetrics()
        self.frontend = Frontend(await model.spec.remote(), settings, self._submit)
        settle()

    def __serve_build_asgi_app__(self):
        return build_app(self.frontend, self.metrics, health=self._health, scrape=self._scrape)

    def metrics_snapshot(self):
        return self.metrics.snapshot()

    async def _submit(self, items: list[Item], tokens: list[int]) -> list:
        try:
            results = await self.model.submit.remote(items, tokens)
        except RayActorError:
            raise RequestError(UNAVAILABLE, "unhealthy", "the model replica running this request stopped; Ray Serve "
                                                         "restarts it, retry the request") from None
        except RayTaskError as error:
            raise error.cause from None  # the model's own exception, without the remote traceback in its message
        if isinstance(results, Overloaded):
            raise results
        return results

    async def _health(self) -> None:
        await asyncio.wait_for(self.model.check_health.remote(), CONTROL_TIMEOUT_S)

    async def _scrape(self) -> str:
        """Every replica's metrics, ingress and model, added up; a replica that does not answer is left out."""
        context = serve.get_replica_context()
        ingress = serve.get_deployment_handle(context.deployment, context.app_name)
        snapshots = []
        for handle in (ingress, self.model):
            answers = handle.broadcast("metrics_snapshot").results_async(return_exceptions=True)
            snapshots += await asyncio.wait_for(answers, CONTROL_TIMEOUT_S)
        return render(merge([s for s in snapshots if not isinstance(s, BaseException)]))


def application(model: str, *, task: str = "embed", device: str | None = None, dtype: str | None = None,
                replicas: int | str | None = None, gpus_per_replica: float = 1, ingress_replicas: int = 1,
                settings: ServeSettings | None = None) -> serve.Application:
    """The app for ``serve.run``. ``device``: default cuda when the cluster has GPUs. ``replicas``: model replicas, a
    number or ``"auto"`` (autoscaled from one to as many as the cluster's GPUs hold, or one per node on the CPU);
    default one per ``gpus_per_replica`` GPUs, one on the CPU."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    device = device or ("cuda" if _cluster_gpus() > 0 else "cpu")
    settings = (settings or ServeSettings()).on(device)
    on_gpu = device.startswith("cuda")
    most = max(1, int(_cluster_gpus() // gpus_per_replica)) if on_gpu else max(1, _cluster_nodes())
    if replicas == "auto":
        scaling = {"autoscaling_config": {"min_replicas": 1, "max_replicas": most,
                                          # scale out before the replicas start answering 429
                                          "target_ongoing_requests": max(1, settings.max_concurrent_requests // 4)}}
    else:
        count = (most if on_gpu else 1) if replicas is None else int(replicas)
        if count < 1:
            raise ValueError(f"replicas must be at least 1 or 'auto', got {replicas!r}")
        scaling = {"num_replicas": count}
    model_deployment = Model.options(
        **scaling,
        ray_actor_options={"num_cpus": 1, "num_gpus": gpus_per_replica if on_gpu else 0},
        # past its limit a replica answers 429 at once: let requests reach it instead of queueing in Ray's router
        max_ongoing_requests=2 * settings.max_concurrent_requests,
        logging_config={"enable_access_log": False},  # its calls come from the ingress, whose log has each request
    ).bind(str(model), task, device, dtype, settings)
    return Ingress.options(
        num_replicas=ingress_replicas,
        ray_actor_options={"num_cpus": 0},  # light next to the model replicas; it must not take a CPU one needs
        max_ongoing_requests=2 * settings.max_concurrent_requests * most,
    ).bind(model_deployment, settings)


def build(args: dict) -> serve.Application:
    """``application`` from a Serve config file's ``args`` (or ``serve run``'s ``key=value`` strings)."""
    args = dict(args)
    setting_names = {f.name for f in fields(ServeSettings)}
    settings = ServeSettings(**{name: _number(args.pop(name)) for name in setting_names & args.keys()})
    for name in ("gpus_per_replica", "ingress_replicas"):
        if name in args:
            args[name] = _number(args[name])
    if "model" not in args:
        raise ValueError("args needs `model`: a hub id or a checkpoint directory that every node can read")
    return application(args.pop("model"), settings=settings, **args)


def _number(value):
    """A number as is, or from a string: integers stay integers."""
    if isinstance(value, str):
        return float(value) if any(c in value for c in ".eE") else int(value)
    return value


def _cluster_gpus() -> float:
    if ray.is_initialized():
        return ray.cluster_resources().get("GPU", 0)
    import torch

    return torch.cuda.device_count()


def _cluster_nodes() -> int:
    return sum(node["Alive"] for node in ray.nodes()) if ray.is_initialized() else 1
