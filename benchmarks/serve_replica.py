"""A model replica in a process of its own, as a Ray Serve deployment runs it apart from the ingress: the task and its
batcher in a child process, fed over a pipe. Only Ray's transport is left out; what crosses between the processes
(the items with their tokens, the results) is pickled, as Ray pickles it.

The parent's ``RemoteReplica.submit`` is a Frontend's ``submit``. Each side writes on a thread of its own while its
event loop reads, so that neither blocks the other when both pipes are full.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

from fastbert.serve.metrics import BatchMetrics
from fastbert.serve.settings import ServeSettings
from fastbert.serve.tasks import TaskSpec, load_task

SNAPSHOT = "snapshot"  # a request for the replica's batch metrics


class RemoteReplica:
    """The parent's end: starts the replica process and submits to it."""

    def __init__(self, model: str, device: str, dtype: str | None, settings: ServeSettings):
        context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_replica_main, args=(child, model, device, dtype, settings),
                                       daemon=True)
        self.process.start()
        self.spec: TaskSpec = self.connection.recv()
        self._numbers = itertools.count()
        self._pending: dict[int, asyncio.Future] = {}
        self._writer = ThreadPoolExecutor(max_workers=1)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, items, tokens) -> list:
        return await self._call((items, tokens))

    async def batch_snapshot(self):
        return await self._call(SNAPSHOT)

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(timeout=30)
        self._writer.shutdown()

    async def _call(self, message):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (one asyncio.run per measured point): read on it
            self.detach()
            loop.add_reader(self.connection.fileno(), self._answered)
            self._loop = loop
        number = next(self._numbers)
        future = self._pending[number] = loop.create_future()
        await loop.run_in_executor(self._writer, self.connection.send, (number, message))
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result

    def _answered(self) -> None:
        number, result = self.connection.recv()
        future = self._pending.pop(number)
        if not future.done():
            future.set_result(result)

    def detach(self) -> None:
        """Stop reading on the current event loop, before it closes."""
        if self._loop is not None:
            self._loop.remove_reader(self.connection.fileno())
            self._loop = None


def _replica_main(connection, model: str, device: str, dtype: str | None, settings: ServeSettings) -> None:
    task = load_task("embed", model, device=device, dtype=dtype)
    connection.send(task.spec())
    asyncio.run(_serve(connection, task, settings))


async def _serve(connection, task, settings: ServeSettings) -> None:
    loop = asyncio.get_running_loop()
    metrics = BatchMetrics()
    batcher = settings.batcher(task.run, metrics)
    writer = ThreadPoolExecutor(max_workers=1)
    arrived: asyncio.Queue = asyncio.Queue()
    loop.add_reader(connection.fileno(), lambda: arrived.put_nowait(connection.recv()))

    async def answer(number: int, message) -> None:
        try:
            result = metrics.snapshot(batcher.in_flight) if message == SNAPSHOT else await batcher.submit(*message)
        except Exception as error:  # noqa: BLE001 - sent back, raised by the caller
            result = error
        await loop.run_in_executor(writer, connection.send, (number, result))

    running = set()
    while (received := await arrived.get()) is not None:
        job = loop.create_task(answer(*received))
        running.add(job)
        job.add_done_callback(running.discard)
    batcher.close()
    writer.shutdown()
