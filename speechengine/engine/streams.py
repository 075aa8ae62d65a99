"""Streamed requests through a model's scheduler, two ways.

- ``ordered``: several inputs of one request (the sentences of a text), each its own scheduler
  unit, so they share batches with other requests' units; results come back in order. A stream
  keeps one unit in the scheduler at a time: the next is submitted the moment the previous result
  is in, before the caller encodes and sends it, so model and network work overlap. Keeping more
  queued would put one request's units into the same batch, which returns as a whole and so
  delays the first result; one at a time also interleaves concurrent streams fairly instead of
  letting one long text hold the queue. Only the first unit can be refused for a full queue;
  the later ones continue a response that has started.
- ``generate``: one input whose family yields partial outputs (STREAM_METHODS). It is one
  scheduler unit of its own (a batch of one) that holds a worker slot while it runs; the worker
  thread hands each output to the event loop with ``call_soon_threadsafe`` into an asyncio.Queue.

- ``stepped``: one input that its family runs in steps (``ModelFamily.stepper``), each step its
  own scheduler unit carrying the request's state, so a long request takes one turn per step
  and shares batches with other requests' steps; the stepper turns each step's result into
  partial outputs. One step at a time is in the scheduler; only the first can be refused.

Closing any of these iterators (the client went away) cancels the unit in the scheduler, which drops it
if it is still queued, and sets the stream's cancel flag, which the worker checks at each output.
That cleanup is synchronous on purpose: it also completes under a cancel scope that interrupts
every await.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from speechengine.capabilities import Capability
from speechengine.models.base import Stepper


@dataclass(frozen=True)
class Streamed:
    """The scheduler work type of a generator stream of ``capability``."""

    capability: Capability


@dataclass(eq=False)  # hashed by identity: as a batch key it keeps every stream in a batch of its own
class StreamJob:
    item: Any
    emit: Callable[[Any], None]  # thread-safe: hands one output to the event loop
    cancelled: threading.Event


_END = object()


def _retrieve(task: asyncio.Task) -> None:
    """Mark a task's exception as seen: a stream closed early never awaits its last unit."""
    if not task.cancelled():
        task.exception()


async def ordered(submit: Callable[[Any, bool], Awaitable[Any]], items: Sequence[Any]) -> AsyncIterator[Any]:
    """``await submit(item, continued)`` for each item, yielded in order, with the next one already
    submitted; ``continued`` is False for the first item only."""
    loop = asyncio.get_running_loop()

    def start(index: int) -> asyncio.Task:
        task = loop.create_task(submit(items[index], index > 0))
        task.add_done_callback(_retrieve)
        return task

    pending = start(0) if items else None
    try:
        for index in range(len(items)):
            result = await pending
            pending = start(index + 1) if index + 1 < len(items) else None
            yield result
    finally:
        if pending is not None:
            pending.cancel()


async def stepped(submit: Callable[[Any, bool], Awaitable[Any]], stepper: Stepper) -> AsyncIterator[Any]:
    """``await submit(step, continued)`` for each step the stepper gives; yields its partial outputs."""
    continued = False
    while (step := stepper.next_step()) is not None:
        result = await submit(step, continued)
        continued = True
        for output in stepper.feed(result):
            yield output


async def generate(submit: Callable[[Streamed, StreamJob], Awaitable[Any]], capability: Capability,
                   item: Any) -> AsyncIterator[Any]:
    """The outputs of one generator stream, as the worker produces them."""
    loop = asyncio.get_running_loop()
    outputs: asyncio.Queue = asyncio.Queue()
    job = StreamJob(item, lambda output: loop.call_soon_threadsafe(outputs.put_nowait, output), threading.Event())
    done = loop.create_task(submit(Streamed(capability), job))
    done.add_done_callback(_retrieve)
    # The worker's emits are queued on the loop before its completion is, so _END comes last.
    done.add_done_callback(lambda _: outputs.put_nowait(_END))
    try:
        while (output := await outputs.get()) is not _END:
            yield output
        done.result()  # the stream's error, if it failed
    finally:
        job.cancelled.set()
        done.cancel()
