"""Unit tests of the batching scheduler with a fake runner (no models)."""

from __future__ import annotations

import asyncio
import time

import pytest

from speechengine.errors import QueueFullError, ServiceUnavailableError
from speechengine.scheduler import BatchScheduler


class Recorder:
    """A fake runner: records each batch, optionally blocks until released, fails on 'boom'."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[tuple[object, list]] = []
        self.delay = delay
        self.gate: asyncio.Event | None = None

    async def __call__(self, capability, items):
        self.batches.append((capability, list(items)))
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if "boom" in items:
            raise RuntimeError("model exploded")
        return [f"done:{x}" for x in items]


def make(runner, **kw) -> BatchScheduler:
    opts = dict(max_batch_size=3, max_wait_ms=5, queue_limit=100, max_inflight=1)
    opts.update(kw)
    return BatchScheduler("fake", runner, **opts)


async def test_more_requests_than_batch_size_all_served_in_order():
    runner = Recorder(delay=0.01)
    sched = make(runner)
    results = await asyncio.gather(*(sched.submit("stt", i) for i in range(10)))
    assert results == [f"done:{i}" for i in range(10)]
    served = [x for _, items in runner.batches for x in items]
    assert served == list(range(10))  # arrival order, none lost, none twice
    assert all(len(items) <= 3 for _, items in runner.batches)
    assert max(len(items) for _, items in runner.batches) == 3  # it did batch
    assert sched.stats.completed == 10 and sched.queued == 0
    await sched.close()


async def test_requests_beyond_a_full_batch_stay_queued():
    runner = Recorder()
    runner.gate = asyncio.Event()
    sched = make(runner, max_batch_size=2)
    tasks = [asyncio.create_task(sched.submit("stt", i)) for i in range(5)]
    await asyncio.sleep(0.05)
    assert len(runner.batches) == 1 and runner.batches[0][1] == [0, 1]
    assert sched.queued == 3  # waiting, not dropped
    runner.gate.set()
    assert await asyncio.gather(*tasks) == [f"done:{i}" for i in range(5)]
    await sched.close()


async def test_a_request_on_an_idle_model_starts_at_once():
    sched = make(Recorder(), max_batch_size=8, max_wait_ms=10_000)
    t0 = time.perf_counter()
    assert await sched.submit("stt", "x") == "done:x"
    assert time.perf_counter() - t0 < 1.0  # nothing was running: no reason to wait for company
    await sched.close()


async def test_max_wait_bounds_a_request_beside_a_running_batch():
    runner = Recorder()
    runner.gate = asyncio.Event()
    sched = make(runner, max_batch_size=8, max_wait_ms=50, max_inflight=2)
    first = asyncio.create_task(sched.submit("stt", "a"))
    await asyncio.sleep(0.01)
    assert [items for _, items in runner.batches] == [["a"]]  # the idle model started it at once
    t0 = time.perf_counter()
    second = asyncio.create_task(sched.submit("stt", "b"))
    while len(runner.batches) < 2:
        await asyncio.sleep(0.001)
    waited = time.perf_counter() - t0
    assert 0.045 <= waited < 0.5  # a batch was running: it waited for company, but not forever
    runner.gate.set()
    assert await asyncio.gather(first, second) == ["done:a", "done:b"]
    await sched.close()


async def test_requests_that_arrive_during_a_batch_go_together_when_it_ends():
    runner = Recorder()
    runner.gate = asyncio.Event()
    sched = make(runner, max_batch_size=8, max_wait_ms=10_000)
    tasks = [asyncio.create_task(sched.submit("stt", "a"))]
    await asyncio.sleep(0.01)
    tasks += [asyncio.create_task(sched.submit("stt", x)) for x in "bcd"]
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    runner.gate.set()
    await asyncio.gather(*tasks)
    assert time.perf_counter() - t0 < 1.0  # the model went idle: no waiting out max_wait
    assert [items for _, items in runner.batches] == [["a"], ["b", "c", "d"]]
    await sched.close()


async def test_full_batch_goes_without_waiting():
    sched = make(Recorder(), max_batch_size=2, max_wait_ms=10_000)
    t0 = time.perf_counter()
    await asyncio.gather(sched.submit("stt", 1), sched.submit("stt", 2))
    assert time.perf_counter() - t0 < 1.0
    await sched.close()


async def test_full_queue_rejects_with_429():
    runner = Recorder()
    runner.gate = asyncio.Event()
    sched = make(runner, max_batch_size=1, queue_limit=2)
    running = asyncio.create_task(sched.submit("stt", "a"))
    await asyncio.sleep(0.02)  # "a" is running, the queue is empty
    queued = [asyncio.create_task(sched.submit("stt", x)) for x in ("b", "c")]
    await asyncio.sleep(0.02)
    with pytest.raises(QueueFullError) as e:
        await sched.submit("stt", "d")
    assert e.value.status == 429 and e.value.headers()["Retry-After"]
    assert sched.stats.rejected == 1
    runner.gate.set()
    assert await asyncio.gather(running, *queued) == ["done:a", "done:b", "done:c"]
    await sched.close()


async def test_failing_batch_fails_its_requests_and_scheduler_keeps_serving():
    sched = make(Recorder(), max_batch_size=2, max_wait_ms=20)
    outcomes = await asyncio.gather(sched.submit("stt", "boom"), sched.submit("stt", "fine"), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)  # both shared the failing batch
    assert await sched.submit("stt", "after") == "done:after"
    assert sched.stats.failed == 2 and sched.stats.completed == 1
    await sched.close()


async def test_wrong_result_count_fails_the_batch():
    async def short_runner(cap, items):
        return items[:-1]

    sched = make(short_runner, max_batch_size=2, max_wait_ms=20)
    outcomes = await asyncio.gather(sched.submit("stt", 1), sched.submit("stt", 2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    await sched.close()


async def test_batches_hold_one_capability_and_key():
    runner = Recorder()
    sched = make(runner, max_batch_size=8, max_wait_ms=20)
    await asyncio.gather(
        sched.submit("stt", 1, key="en"), sched.submit("tts", 2), sched.submit("stt", 3, key="de"),
        sched.submit("stt", 4, key="en"),
    )
    groups = sorted((cap, sorted(items)) for cap, items in runner.batches)
    assert groups == [("stt", [1, 4]), ("stt", [3]), ("tts", [2])]
    await sched.close()


async def test_cancelled_request_leaves_the_queue():
    runner = Recorder()
    runner.gate = asyncio.Event()
    sched = make(runner, max_batch_size=1)
    first = asyncio.create_task(sched.submit("stt", "first"))
    await asyncio.sleep(0.02)
    doomed = asyncio.create_task(sched.submit("stt", "doomed"))
    kept = asyncio.create_task(sched.submit("stt", "kept"))
    await asyncio.sleep(0.02)
    assert sched.queued == 2
    doomed.cancel()
    await asyncio.sleep(0.01)
    assert sched.queued == 1 and sched.stats.cancelled == 1
    runner.gate.set()
    assert await first == "done:first" and await kept == "done:kept"
    assert [items for _, items in runner.batches] == [["first"], ["kept"]]
    await sched.close()


async def test_parallel_batches_up_to_max_inflight():
    runner = Recorder(delay=0.1)
    sched = make(runner, max_batch_size=1, max_inflight=2, max_wait_ms=0)
    t0 = time.perf_counter()
    await asyncio.gather(*(sched.submit("stt", i) for i in range(4)))
    assert time.perf_counter() - t0 < 0.35  # 4 batches of 0.1 s on 2 slots, not 0.4 s in series
    await sched.close()


async def test_close_fails_queued_requests_with_503():
    runner = Recorder()
    runner.gate = asyncio.Event()
    sched = make(runner, max_batch_size=1)
    running = asyncio.create_task(sched.submit("stt", "a"))
    await asyncio.sleep(0.02)
    queued = asyncio.create_task(sched.submit("stt", "b"))
    await asyncio.sleep(0.02)
    closing = asyncio.create_task(sched.close())
    await asyncio.sleep(0.02)
    runner.gate.set()
    await closing
    assert await running == "done:a"
    with pytest.raises(ServiceUnavailableError):
        await queued
    with pytest.raises(ServiceUnavailableError):
        await sched.submit("stt", "late")
