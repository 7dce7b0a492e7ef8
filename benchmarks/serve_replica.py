"""A model replica in a process of its own, as a Ray Serve deployment runs it apart from the ingress: the task and its
batcher in a child process, fed over a pipe. Only Ray's transport is left out; what crosses between the processes
(the items with their tokens, the results) is pickled, as Ray pickles it.

The parent's ``RemoteReplica.submit`` is a Frontend's ``submit``. Both sides read and write the pipe on their event
loop (``pipe_channel``), each answer going back as soon as its request's results are in.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing

from fastbert.serve.heap import settle
from fastbert.serve.metrics import BatchMetrics
from fastbert.serve.settings import ServeSettings
from fastbert.serve.tasks import TaskSpec, load_task

from .pipe_channel import Channel

SNAPSHOT = "snapshot"  # a request for the replica's batch metrics


class RemoteReplica:
    """The parent's end: starts the replica process and submits to it."""

    def __init__(self, model: str, device: str, dtype: str | None, settings: ServeSettings):
        context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_replica_main, args=(child, model, device, dtype, settings),
                                       daemon=True)
        self.process.start()
        child.close()  # the child's end lives in the child alone: closing ours is what ends it
        self.spec: TaskSpec = self.connection.recv()
        self._numbers = itertools.count()
        self._pending: dict[int, asyncio.Future] = {}
        self._opened: asyncio.Task | None = None  # the channel on the current event loop, and its reader
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, items, tokens) -> list:
        return await self._call((items, tokens))

    async def batch_snapshot(self):
        return await self._call(SNAPSHOT)

    def close(self) -> None:
        """Ends the replica process: it stops when the pipe closes."""
        self.connection.close()
        self.process.join(timeout=30)

    async def _call(self, message):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (one asyncio.run per measured point): read on it
            self.detach()
            self._loop, self._opened = loop, loop.create_task(self._open())  # before the await: calls share it
        channel, _ = await self._opened
        number = next(self._numbers)
        future = self._pending[number] = loop.create_future()
        channel.send((number, message))
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result

    async def _open(self) -> tuple[Channel, asyncio.Task]:
        channel = await Channel.open(self.connection)
        return channel, asyncio.get_running_loop().create_task(self._answers(channel))

    async def _answers(self, channel: Channel) -> None:
        async for number, result in channel.messages():
            future = self._pending.pop(number)
            if not future.done():
                future.set_result(result)

    def detach(self) -> None:
        """Stop reading on the current event loop, before it closes."""
        if self._loop is not None:
            if self._opened.done():
                channel, reading = self._opened.result()
                reading.cancel()
                channel.close()
            else:
                self._opened.cancel()
            self._loop = self._opened = None


def _replica_main(connection, model: str, device: str, dtype: str | None, settings: ServeSettings) -> None:
    task = load_task("embed", model, device=device, dtype=dtype)
    connection.send(task.spec())
    settle()
    asyncio.run(_serve(connection, task, settings))


async def _serve(connection, task, settings: ServeSettings) -> None:
    loop = asyncio.get_running_loop()
    metrics = BatchMetrics()
    batcher = settings.batcher(task.run, metrics, task.collect)
    channel = await Channel.open(connection)

    async def answer(number: int, message) -> None:
        try:
            result = metrics.snapshot(batcher.in_flight) if message == SNAPSHOT else await batcher.submit(*message)
        except Exception as error:  # noqa: BLE001 - sent back, raised by the caller
            result = error
        channel.send((number, result))

    running = set()
    async for number, message in channel.messages():
        job = loop.create_task(answer(number, message))
        running.add(job)
        job.add_done_callback(running.discard)
    batcher.close()
    channel.close()
