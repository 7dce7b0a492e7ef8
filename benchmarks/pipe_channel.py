"""Messages between two processes' event loops over one end of a ``multiprocessing.Pipe``, without threads.

``send`` never blocks: the messages sent in one pass of the event loop leave together, as one pickled frame, and the
event loop writes what the pipe cannot take yet when it can. The reader unpickles each frame whole. Under load, one
write and one read carry many requests or answers, where a message each would cost a write, a read and a pass of
the loop each.

A frame is read in one pass where the kernel holds it whole: the socket buffers, the stream's limit and the
transport's read size are raised past a frame's size, so that a large frame is not read a slice per pass (and the
reading paused and resumed between slices) while the loop's other work runs in each pass.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import struct
from collections.abc import AsyncIterator

HEADER = struct.Struct("!Q")  # a frame's length in bytes
# more than a pass's frame of requests or answers holds; the kernel caps the socket buffers at its own maximum
FRAME_BYTES = 8 << 20


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
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, FRAME_BYTES)
        reader, writer = await asyncio.open_connection(sock=sock, limit=FRAME_BYTES)
        writer.transport.max_size = FRAME_BYTES  # bytes taken in one read of the socket (asyncio's default: 256 KiB)
        return cls(reader, writer)

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
