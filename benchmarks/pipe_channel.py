"""Messages between two processes' event loops over one end of a ``multiprocessing.Pipe``, without threads.

``send`` never blocks: the messages sent in one pass of the event loop leave together, as one pickled frame, and the
event loop writes what the pipe cannot take yet when it can. The reader unpickles each frame whole. Under load, one
write and one read carry many requests or answers, where a message each would cost a write, a read and a pass of
the loop each.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import struct
from collections.abc import AsyncIterator

HEADER = struct.Struct("!Q")  # a frame's length in bytes


class Channel:
    """One end, on the running event loop; ``close`` it before that loop ends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._outgoing: list = []

    @classmethod
    async def open(cls, connection) -> Channel:
        """A channel on a duplicate of ``connection``'s socket: closing the channel leaves the connection open."""
        sock = socket.socket(fileno=os.dup(connection.fileno()))
        sock.setblocking(False)
        return cls(*await asyncio.open_connection(sock=sock))

    def send(self, message) -> None:
        """Queues ``message``; it leaves with the others sent in this pass of the event loop."""
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(message)

    async def messages(self) -> AsyncIterator:
        """Each message received, in the order sent, until the other end closes."""
        while True:
            try:
                header = await self._reader.readexactly(HEADER.size)
            except asyncio.IncompleteReadError as end:
                if end.partial:
                    raise
                return
            for message in pickle.loads(await self._reader.readexactly(HEADER.unpack(header)[0])):
                yield message

    def close(self) -> None:
        """Closes this end once what was sent is written."""
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if not self._outgoing:  # already flushed by close
            return
        frame = pickle.dumps(self._outgoing, pickle.HIGHEST_PROTOCOL)
        self._outgoing = []
        self._writer.write(HEADER.pack(len(frame)) + frame)
