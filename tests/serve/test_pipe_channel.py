"""benchmarks/pipe_channel.py: what a pipe's Connection carries one message at a time, the channel carries as one
frame per pass of the event loop, in the same order and unchanged."""

import asyncio
import multiprocessing
import pickle
import socket

from benchmarks.pipe_channel import HEADER, Channel
from fastbert.batching import Tokens
from fastbert.serve.tasks import Item

MESSAGES = [(0, "snapshot"), (1, ([Item("a text", (True,), Tokens([101, 7592, 102], [0, 0, 0]))], [3])),
            (2, [[0.5, -1.0]])]


def connection_roundtrip(messages: list) -> list:
    """What multiprocessing's Connection delivers, a send and a recv per message."""
    left, right = multiprocessing.Pipe()
    received = []
    for message in messages:
        left.send(message)
        received.append(right.recv())
    return received


def test_messages_sent_in_one_pass_leave_as_one_frame():
    left, right = multiprocessing.Pipe()

    async def main():
        channel = await Channel.open(left)
        for message in MESSAGES:
            channel.send(message)
        await asyncio.sleep(0)  # the pass ends: the frame is written
        channel.close()

    asyncio.run(main())
    left.close()
    with socket.socket(fileno=right.fileno()) as raw:
        data = b"".join(iter(lambda: raw.recv(1 << 16), b""))
        right._handle = None  # the socket object closed the descriptor
    [size] = HEADER.unpack(data[:HEADER.size])
    assert len(data) == HEADER.size + size  # one frame
    assert pickle.loads(data[HEADER.size:]) == connection_roundtrip(MESSAGES)


def test_messages_arrive_in_order_until_the_other_end_closes():
    left, right = multiprocessing.Pipe()

    async def main():
        sender, receiver = await Channel.open(left), await Channel.open(right)
        for message in MESSAGES:  # one pass each
            sender.send(message)
            await asyncio.sleep(0)
        sender.send("last")
        sender.close()
        left.close()
        received = [message async for message in receiver.messages()]
        receiver.close()
        return received

    assert asyncio.run(asyncio.wait_for(main(), 20)) == connection_roundtrip(MESSAGES + ["last"])


def test_items_pickle_to_equal_items():
    assert pickle.loads(pickle.dumps(MESSAGES[1][1][0])) == MESSAGES[1][1][0]
    tokens = pickle.loads(pickle.dumps(Tokens([1, 2], [0, 1])))
    assert tokens == Tokens([1, 2], [0, 1]) and type(tokens) is Tokens


def test_a_large_frame_is_read_without_pausing_the_reader():
    left, right = multiprocessing.Pipe()
    message = (7, b"\x01" * (3 << 20))  # past asyncio's default stream limit and read size

    async def main():
        sender, receiver = await Channel.open(left), await Channel.open(right)
        pauses = []
        transport = receiver._reader._transport
        pause = transport.pause_reading
        transport.pause_reading = lambda: (pauses.append(True), pause())
        sender.send(message)
        received = await anext(receiver.messages())
        sender.close()
        receiver.close()
        return received, pauses

    received, pauses = asyncio.run(asyncio.wait_for(main(), 20))
    assert received == message and not pauses
