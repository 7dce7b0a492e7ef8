"""Dynamic batching by tokens: the inputs of concurrent requests coalesced into forward passes of at most
``max_batch_tokens`` tokens.

Requests queue in arrival order. A batch closes when its next input would pass the token budget, or when the oldest
queued request has waited ``max_wait_s``; an input longer than the budget runs alone rather than never. One batch runs
at a time, on a worker thread, so the event loop keeps accepting requests and the next batch forms while the model
works. A request's inputs may span several batches; its results come back in its own order, and a batch that fails
fails exactly the requests it held inputs of.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol


class Overloaded(Exception):
    """More requests in flight than the batcher admits."""


class BatchObserver(Protocol):
    def request_queued(self, seconds: float) -> None: ...

    def batch_ran(self, tokens: int, inputs: int, seconds: float) -> None: ...


@dataclass(eq=False)
class _Request:
    inputs: list
    tokens: list[int]
    future: asyncio.Future
    enqueued: float
    results: list = field(init=False)
    unanswered: int = field(init=False)
    next: int = 0          # its first input not yet in a batch
    started: bool = False  # whether a batch has taken any of its inputs

    def __post_init__(self):
        self.results = [None] * len(self.inputs)
        self.unanswered = len(self.inputs)


class TokenBatcher:
    """Runs ``run_batch(inputs) -> results`` (one result per input, blocking) on batches of submitted inputs; a
    request's answer is ``collect(results)`` of its inputs' results, in order (default: the list)."""

    def __init__(self, run_batch: Callable[[list], list], *, max_batch_tokens: int, max_wait_s: float,
                 max_concurrent_requests: int, observer: BatchObserver | None = None,
                 collect: Callable[[list], object] = list):
        self.run_batch = run_batch
        self.collect = collect
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_concurrent_requests = max_concurrent_requests
        self.observer = observer
        self.in_flight = 0
        self._queue: deque[_Request] = deque()
        self._queued_tokens = 0
        self._wake = asyncio.Event()  # the batching loop has something to do: a first request, or a full budget
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastbert-batch")
        self._loop_task: asyncio.Task | None = None
        self._closed = False

    @property
    def failed(self) -> BaseException | None:
        """What stopped the batching loop, when something did; requests then fail at once."""
        task = self._loop_task
        return task.exception() if task is not None and task.done() and not task.cancelled() else None

    async def submit(self, inputs: list, tokens: list[int]) -> list:
        """The results of ``inputs`` (``tokens[i]`` tokens each), in their order. Raises Overloaded when
        ``max_concurrent_requests`` requests are already in flight, or what the batch holding an input raised."""
        if len(inputs) != len(tokens):
            raise ValueError(f"{len(inputs)} inputs but {len(tokens)} token counts")
        if self.in_flight >= self.max_concurrent_requests:
            raise Overloaded(f"model is overloaded: {self.in_flight} requests in flight, the most this replica admits "
                             f"(max_concurrent_requests={self.max_concurrent_requests})")
        if not inputs:
            return []
        self._start()
        loop = asyncio.get_running_loop()
        request = _Request(list(inputs), list(tokens), loop.create_future(), loop.time())
        self.in_flight += 1
        try:
            self._queue.append(request)
            self._queued_tokens += sum(tokens)
            # the loop waits for a first request, then for the budget to fill or its deadline: waking it for each
            # request in between would cost a pass of the event loop each
            if len(self._queue) == 1 or self._queued_tokens >= self.max_batch_tokens:
                self._wake.set()
            return await request.future  # a caller that goes away cancels the future: its inputs are skipped
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        """Stop batching; requests still queued fail, and so do later ones."""
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
        for request in self._queue:
            if not request.future.done():
                request.future.set_exception(RuntimeError("the batcher was closed"))
        self._queue.clear()
        self._worker.shutdown(wait=False)

    def _start(self) -> None:
        if self._closed:
            raise RuntimeError("the batcher was closed")
        if self.failed is not None:
            raise RuntimeError(f"the batching loop stopped: {self.failed!r}")
        if self._loop_task is None:  # on first use: the loop must be the caller's running one
            self._loop_task = asyncio.get_running_loop().create_task(self._batches(), name="fastbert-batcher")

    async def _batches(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch, tokens = await self._next_batch(loop)
            if batch:
                await self._run(loop, batch, tokens)

    async def _next_batch(self, loop) -> tuple[list[tuple[_Request, int]], int]:
        """Waits for a request, then for others until the budget fills or the oldest has waited ``max_wait_s``."""
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
        deadline = self._queue[0].enqueued + self.max_wait_s
        while self._queued_tokens < self.max_batch_tokens and (remaining := deadline - loop.time()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return self._take()

    def _take(self) -> tuple[list[tuple[_Request, int]], int]:
        """Queued inputs in arrival order, while they fit the budget (the first one always)."""
        batch, tokens = [], 0
        while self._queue:
            request = self._queue[0]
            if request.future.done():  # cancelled by its caller, or failed with an earlier batch
                self._queued_tokens -= sum(request.tokens[request.next:])
                self._queue.popleft()
                continue
            count = request.tokens[request.next]
            if batch and tokens + count > self.max_batch_tokens:
                break
            batch.append((request, request.next))
            tokens += count
            self._queued_tokens -= count
            request.next += 1
            if request.next == len(request.inputs):
                self._queue.popleft()
        return batch, tokens

    async def _run(self, loop, batch: list[tuple[_Request, int]], tokens: int) -> None:
        requests = list({id(request): request for request, _ in batch}.values())
        started = loop.time()
        for request in requests:
            if not request.started and self.observer is not None:
                self.observer.request_queued(started - request.enqueued)
            request.started = True
        inputs = [request.inputs[index] for request, index in batch]
        try:
            results = await loop.run_in_executor(self._worker, self.run_batch, inputs)
            if len(results) != len(inputs):
                raise RuntimeError(f"a batch of {len(inputs)} inputs returned {len(results)} results")
        except Exception as error:  # noqa: BLE001 - handed to the requests of this batch, the loop goes on
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        finally:
            if self.observer is not None:
                self.observer.batch_ran(tokens, len(inputs), loop.time() - started)
        for (request, index), result in zip(batch, results):
            if request.future.done():
                continue
            request.results[index] = result
            request.unanswered -= 1
            if request.unanswered == 0:
                request.future.set_result(self.collect(request.results))

