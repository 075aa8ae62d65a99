"""One model's batching queue: forms batches and hands them to a runner, one loop per model.

Rules it keeps: requests are served in arrival order; a batch holds one capability and one batch
key, up to ``max_batch_size`` items, and waits at most ``max_wait_ms`` after its oldest item
arrived for more to join, but only while another batch of the model is running: on an idle
model a request starts at once, since nothing would finish sooner for waiting; at most ``max_inflight`` batches run at once (one per worker); requests
beyond a full batch stay queued, never dropped; a full queue rejects with QueueFullError (429),
except the continuation of an admitted request (the next piece of a stream: rejecting it would
cut a response that is half sent); a cancelled request leaves the queue; every request ends in
exactly one final state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable

from speechengine.errors import QueueFullError, ServiceUnavailableError

Runner = Callable[[Any, list[Any]], Awaitable[list[Any]]]


@dataclass(eq=False)
class _Item:
    group: tuple[Hashable, Hashable]  # (capability, batch key)
    payload: Any
    future: asyncio.Future
    enqueued_at: float
    trace: RequestTrace


@dataclass
class RequestTrace:
    """Filled in by the scheduler for one request: how long it queued, its batch, the run time."""

    queue_wait_s: float = 0.0
    batch_size: int = 0
    run_s: float = 0.0
    audio_s: float = 0.0  # set by the caller once the result is known (audio in or out)


@dataclass
class SchedulerStats:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected: int = 0
    batches: int = 0
    batch_sizes: Counter = field(default_factory=Counter)  # size -> number of batches


class BatchScheduler:
    def __init__(
        self,
        name: str,
        runner: Runner,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        queue_limit: int,
        max_inflight: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._runner = runner
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_limit = queue_limit
        self._clock = clock
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_inflight)
        self._running: set[asyncio.Task] = set()
        self._busy = 0  # batches dispatched and not yet finished
        self._loop_task: asyncio.Task | None = None
        self._closed = False
        self.stats = SchedulerStats()

    # --- public -------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running_batches(self) -> int:
        return len(self._running)

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name=f"scheduler:{self.name}")

    async def submit(
        self, capability: Hashable, payload: Any, key: Hashable = (), trace: RequestTrace | None = None, *,
        admitted: bool = False,
    ) -> Any:
        """Queue one request and wait for its result (or its error); ``trace`` receives its timings.
        ``admitted``: a continuation of a request already accepted, never refused for a full queue."""
        if self._closed:
            raise ServiceUnavailableError("the server is shutting down")
        if not admitted and len(self._queue) >= self.queue_limit:
            self.stats.rejected += 1
            raise QueueFullError(
                f"model {self.name!r} has {len(self._queue)} requests queued (limit {self.queue_limit}); retry later"
            )
        self.start()
        item = _Item((capability, key), payload, asyncio.get_running_loop().create_future(), self._clock(),
                     trace if trace is not None else RequestTrace())
        self._queue.append(item)
        self.stats.submitted += 1
        self._wakeup.set()
        try:
            return await item.future
        except asyncio.CancelledError:
            if item in self._queue:  # not dispatched yet: free its place
                self._queue.remove(item)
            self.stats.cancelled += 1
            raise

    async def close(self) -> None:
        """Stop taking work, fail what is queued, and wait for running batches to finish."""
        self._closed = True
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ServiceUnavailableError("the server is shutting down"))
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # --- the loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            self._busy += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_batch(self) -> list[_Item]:
        while True:
            while self._queue and self._queue[0].future.done():  # cancelled while queued
                self._queue.popleft()
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            head = self._queue[0]
            members = [it for it in self._queue if it.group == head.group and not it.future.done()]
            remaining = head.enqueued_at + self.max_wait_s - self._clock()
            if len(members) >= self.max_batch_size or remaining <= 0 or self._busy == 0:
                batch = members[: self.max_batch_size]
                taken = set(map(id, batch))
                self._queue = deque(it for it in self._queue if id(it) not in taken)
                return batch
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass

    async def _run(self, batch: list[_Item]) -> None:
        self.stats.batches += 1
        self.stats.batch_sizes[len(batch)] += 1
        started = self._clock()
        for it in batch:
            it.trace.queue_wait_s = started - it.enqueued_at
            it.trace.batch_size = len(batch)
        try:
            capability = batch[0].group[0]
            try:
                results = await self._runner(capability, [it.payload for it in batch])
            finally:
                for it in batch:
                    it.trace.run_s = self._clock() - started
            if len(results) != len(batch):
                raise RuntimeError(f"runner returned {len(results)} results for a batch of {len(batch)}")
        except Exception as exc:  # one failing batch fails its own requests, nothing else
            for it in batch:
                if not it.future.done():
                    it.future.set_exception(exc)
                    self.stats.failed += 1
        else:
            for it, result in zip(batch, results):
                if not it.future.done():
                    it.future.set_result(result)
                    self.stats.completed += 1
        finally:
            self._busy -= 1
            self._slots.release()
            self._wakeup.set()
