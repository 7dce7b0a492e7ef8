"""The token batcher on a fake model: what joins a batch, in what order results come back, where errors go."""

import asyncio
import threading
import time

import pytest

from fastbert.serve.batcher import Overloaded, TokenBatcher


class FakeModel:
    """Doubles each input; records each batch; can be held at its next batch, or made to fail on one input."""

    def __init__(self, fail_on=None):
        self.batches = []
        self.fail_on = fail_on
        self.threads = set()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, inputs):
        self.threads.add(threading.current_thread().name)
        self.release.wait(timeout=10)
        self.batches.append(list(inputs))
        if self.fail_on in inputs:
            raise ValueError(f"cannot run {self.fail_on}")
        return [2 * x for x in inputs]


def batcher(model, max_batch_tokens=100, max_wait_s=0.05, max_concurrent_requests=100, **kwargs):
    return TokenBatcher(model, max_batch_tokens=max_batch_tokens, max_wait_s=max_wait_s,
                        max_concurrent_requests=max_concurrent_requests, **kwargs)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=20))


def test_concurrent_requests_share_a_batch_and_get_their_own_results_in_order():
    model = FakeModel()

    async def main():
        b = batcher(model)
        return await asyncio.gather(b.submit([1, 2, 3], [5, 5, 5]), b.submit([10], [5]), b.submit([7, 8], [5, 5]))

    assert run(main()) == [[2, 4, 6], [20], [14, 16]]
    assert model.batches == [[1, 2, 3, 10, 7, 8]]


def test_a_batch_stops_before_the_input_that_would_pass_the_budget():
    model = FakeModel()

    async def main():
        b = batcher(model, max_batch_tokens=10)
        return await asyncio.gather(b.submit([1, 2], [4, 4]), b.submit([3, 4], [4, 1]))

    assert run(main()) == [[2, 4], [6, 8]]
    assert model.batches == [[1, 2], [3, 4]]  # 4 + 4 + 4 > 10: a request's inputs may span batches


def test_an_input_longer_than_the_budget_runs_alone():
    model = FakeModel()

    async def main():
        b = batcher(model, max_batch_tokens=10)
        return await asyncio.gather(b.submit([1], [3]), b.submit([2], [50]), b.submit([3], [3]))

    assert run(main()) == [[2], [4], [6]]
    assert model.batches == [[1], [2], [3]]


def test_a_lone_request_waits_at_most_max_wait():
    model = FakeModel()

    async def main():
        b = batcher(model, max_wait_s=0.2)
        started = time.perf_counter()
        await b.submit([1], [1])
        return time.perf_counter() - started

    assert 0.2 <= run(main()) < 2.0


def test_a_full_budget_does_not_wait():
    model = FakeModel()

    async def main():
        b = batcher(model, max_batch_tokens=10, max_wait_s=5.0)
        started = time.perf_counter()
        await b.submit([1, 2], [5, 5])
        return time.perf_counter() - started

    assert run(main()) < 2.0


def test_the_next_batch_forms_while_one_runs_on_a_worker_thread():
    model = FakeModel()
    model.release.clear()

    async def main():
        b = batcher(model, max_wait_s=0.0)
        first = asyncio.ensure_future(b.submit([1], [1]))
        while not model.threads:  # the first batch is running, held
            await asyncio.sleep(0.01)
        later = [asyncio.ensure_future(b.submit([x], [1])) for x in (2, 3, 4)]
        await asyncio.sleep(0.05)  # the event loop is free: these were accepted while the model works
        assert b.in_flight == 4
        model.release.set()
        return [await first] + [await f for f in later]

    assert run(main()) == [[2], [4], [6], [8]]
    assert model.batches == [[1], [2, 3, 4]]
    assert model.threads == {next(iter(model.threads))} and next(iter(model.threads)).startswith("fastbert-batch")


def test_an_error_fails_exactly_the_requests_of_its_batch():
    model = FakeModel(fail_on=3)

    async def main():
        b = batcher(model, max_batch_tokens=10)
        results = await asyncio.gather(b.submit([1], [5]), b.submit([2, 3], [4, 4]), b.submit([4], [4]),
                                       b.submit([5], [1]), return_exceptions=True)
        return results + [await b.submit([6], [1])]  # and the batcher goes on

    first, second, third, fourth, after = run(main())
    assert model.batches == [[1, 2], [3, 4, 5], [6]]
    assert first == [2] and after == [12]
    # the second request had an input in the failed batch; the third and fourth only there
    assert all(isinstance(r, ValueError) for r in (second, third, fourth))


def test_past_max_concurrent_requests_a_request_is_refused_at_once():
    model = FakeModel()
    model.release.clear()

    async def main():
        b = batcher(model, max_wait_s=0.0, max_concurrent_requests=2)
        admitted = [asyncio.ensure_future(b.submit([x], [1])) for x in (1, 2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="max_concurrent_requests=2"):
            await b.submit([3], [1])
        model.release.set()
        return [await f for f in admitted] + [await b.submit([4], [1])]

    assert run(main()) == [[2], [4], [8]]


def test_a_cancelled_request_leaves_the_queue():
    model = FakeModel()
    model.release.clear()

    async def main():
        b = batcher(model, max_wait_s=0.0)
        first = asyncio.ensure_future(b.submit([1], [1]))
        while not model.threads:
            await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(b.submit([2], [1]))
        kept = asyncio.ensure_future(b.submit([3], [1]))
        await asyncio.sleep(0.01)
        gone.cancel()
        model.release.set()
        return await first, await kept, b.in_flight

    assert run(main()) == ([2], [6], 0)
    assert model.batches == [[1], [3]]


def test_the_observer_sees_each_batch_and_each_request_queue_time():
    seen = {"batches": [], "queued": []}

    class Observer:
        def request_queued(self, seconds):
            seen["queued"].append(seconds)

        def batch_ran(self, tokens, inputs, seconds):
            seen["batches"].append((tokens, inputs))

    async def main():
        b = batcher(FakeModel(), max_batch_tokens=10, observer=Observer())
        await asyncio.gather(b.submit([1, 2], [4, 4]), b.submit([3], [4]))

    run(main())
    assert seen["batches"] == [(8, 2), (4, 1)]
    assert len(seen["queued"]) == 2 and all(s >= 0 for s in seen["queued"])


def test_a_request_answers_what_collect_makes_of_its_results_in_order():
    model = FakeModel()

    async def main():
        b = batcher(model, max_batch_tokens=10, collect=tuple)
        return await asyncio.gather(b.submit([1, 2], [4, 4]), b.submit([3, 4], [4, 1]))

    assert run(main()) == [(2, 4), (6, 8)]  # the lists the default answers, as collect made them
    assert model.batches == [[1, 2], [3, 4]]
