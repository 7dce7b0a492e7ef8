"""The HTTP routes over a Frontend: text-embeddings-inference's, OpenAI's embeddings, fastbert's /fill-mask and /ner.

Bodies are parsed here (400 for one that is not JSON); a RequestError becomes its status with ``{"error",
"error_type"}``, so a bad request costs nothing but its answer; every answer is counted in the request metrics.
"""

from __future__ import annotations

import json
import time
from typing import Awaitable, Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from .. import __version__
from .errors import BAD_JSON, UNAVAILABLE, RequestError
from .frontend import Frontend
from .metrics import RequestMetrics

JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"

# what POST / answers for each task, as text-embeddings-inference routes it
DEFAULT_ROUTES = {"embed": "/embed", "rerank": "/rerank", "classify": "/predict", "fill-mask": "/fill-mask",
                  "ner": "/ner"}


def build_app(frontend: Frontend, metrics: RequestMetrics, *, health: Callable[[], Awaitable[None]],
              scrape: Callable[[], Awaitable[str]]) -> FastAPI:
    """``health()`` raises when no model can answer; ``scrape()`` is the Prometheus text of the whole server."""
    app = FastAPI(title="fastbert", version=__version__)
    posts = {"/embed": frontend.embed, "/v1/embeddings": frontend.openai_embeddings,
             "/embeddings": frontend.openai_embeddings, "/rerank": frontend.rerank, "/predict": frontend.predict,
             "/fill-mask": frontend.fill_mask, "/ner": frontend.ner, "/tokenize": frontend.tokenize}
    posts["/"] = posts[DEFAULT_ROUTES[frontend.spec.task]]

    def answer(route: str, started: float, status: int, content: bytes | str, media_type: str = JSON) -> Response:
        metrics.answered(route, status, time.perf_counter() - started)
        return Response(content, status_code=status, media_type=media_type)

    def error(route: str, started: float, problem: RequestError) -> Response:
        return answer(route, started, problem.status, json.dumps(problem.body()))

    def post(route: str, handler) -> None:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                body = json.loads(await request.body())
            except ValueError as e:
                return error(route, started, RequestError(BAD_JSON, "validation", f"the body is not valid JSON: {e}"))
            try:
                result = await handler(body)
            except RequestError as problem:
                return error(route, started, problem)
            return answer(route, started, 200, json.dumps(result, default=_plain))

        app.add_api_route(route, endpoint, methods=["POST"], name=route)

    for route, handler in posts.items():
        post(route, handler)

    @app.get("/health")
    async def healthy() -> Response:
        started = time.perf_counter()
        try:
            await health()
        except Exception as e:  # noqa: BLE001 - any failure means unhealthy
            return error("/health", started, RequestError(UNAVAILABLE, "unhealthy", f"unhealthy: {e}"))
        return answer("/health", started, 200, b"")

    @app.get("/info")
    async def info() -> Response:
        return answer("/info", time.perf_counter(), 200, json.dumps(frontend.info()))

    @app.get("/metrics")
    async def prometheus() -> Response:
        started = time.perf_counter()
        text = await scrape()  # before counting this scrape: it is not answered yet
        return answer("/metrics", started, 200, text, PROMETHEUS)

    return app


def _plain(value):
    """numpy scalars and arrays in the pipelines' answers, as JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
