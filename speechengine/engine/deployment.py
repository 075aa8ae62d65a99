"""A deployment: one configured model with its scheduler and executor, and its lifetime.

The executor (local threads, child processes or Ray actors) comes from the model's config through
the EXECUTORS table; the scheduler may run as many batches at once as the executor has slots
(replicas x workers). Loading happens once however many requests ask at the same time (an
asyncio lock), off the event loop so it keeps serving. Requests in flight are counted: a model with
requests in flight is never unloaded (idle TTL, LRU eviction and explicit unload all wait for or
skip busy models); a stream counts as in flight until it ends or is closed.

Requests come in these shapes, all through the scheduler: one input, one result (``submit``);
several inputs, results in order (``submit_each``); one input, outputs as they are produced
(``stream``). An input whose family runs it in steps (``ModelFamily.stepper``, e.g. Whisper's
30-s windows) goes through the scheduler one step at a time, in ``submit`` and ``stream`` alike.
See engine/streams.py. Live input arrives chunk by chunk (``open_chunks``, ``submit_chunk``,
``close_chunks``; see engine/vad_stream.py): each chunk is a step carrying its stream's state, so
chunks of different streams share batches.
"""

from __future__ import annotations

import asyncio
import enum
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig, RaySettings
from speechengine.engine.observer import EngineObserver
from speechengine.engine.streams import StreamJob, Streamed, generate, ordered, stepped
from speechengine.errors import ModelLoadError, QueueFullError, SpeechEngineError, UnsupportedCapabilityError
from speechengine.executor import make_executor
from speechengine.models.base import ModelInfo, Stepped
from speechengine.models.registry import family_class
from speechengine.scheduler import BatchScheduler, RequestTrace


class ModelStatus(str, enum.Enum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    UNLOADING = "unloading"
    FAILED = "failed"


def _audio_seconds(items: list, outputs: list) -> float:
    """Audio processed by a batch: input audio (STT, VAD, ...) or, for TTS, the audio made."""
    total = 0.0
    for item, out in zip(items, outputs):
        d = getattr(item, "duration", None)
        total += d if d is not None else getattr(out, "duration", 0.0)
    return total


class Deployment:
    def __init__(
        self,
        config: ModelConfig,
        cache_dir: Path,
        ray: RaySettings | None = None,
        *,
        observer: EngineObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        before_load: Callable[["Deployment"], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.family_cls = family_class(config.family)
        self.family_options = config.family_options()
        self.capabilities: frozenset[Capability] = self.family_cls.capabilities
        self.observer = observer or EngineObserver()
        self.clock = clock
        self._before_load = before_load
        self.executor = make_executor(config, cache_dir, ray or RaySettings())
        self.scheduler = BatchScheduler(
            config.id,
            self._run_batch,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            queue_limit=config.queue_limit,
            max_inflight=self.executor.concurrency,
        )
        self.status = ModelStatus.UNLOADED
        self.info: ModelInfo | None = None
        self.load_error: str | None = None
        self.created = int(time.time())
        self.active = 0  # requests past loading and not yet answered
        self.last_used = clock()
        self._load_lock = asyncio.Lock()
        self._idle = asyncio.Condition()
        self._notifiers: set[asyncio.Task] = set()
        self.observer.watch_queue(config.id, lambda: self.scheduler.queued)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def loaded(self) -> bool:
        return self.status is ModelStatus.LOADED

    async def _run_batch(self, work: Capability | Streamed | Stepped, items: list) -> list:
        if isinstance(work, Streamed):  # a stream is a batch of one that emits while it runs
            job: StreamJob = items[0]
            return [await self.executor.stream(work.capability, job.item, job.emit, job.cancelled)]
        capability = work.capability if isinstance(work, Stepped) else work
        t0 = time.perf_counter()
        outputs = await self.executor.run(work, items)
        self.observer.batch_done(self.id, capability, len(items), time.perf_counter() - t0,
                                 _audio_seconds(items, outputs))
        return outputs

    async def ensure_loaded(self) -> ModelInfo:
        if self.status is ModelStatus.LOADED and self.info is not None:
            return self.info
        async with self._load_lock:
            if self.status is ModelStatus.LOADED and self.info is not None:
                return self.info
            if self._before_load is not None:
                await self._before_load(self)
            self.status = ModelStatus.LOADING
            logger.info("loading model {}", self.id)
            t0 = time.perf_counter()
            try:
                self.info = await self.executor.load()
            except Exception as exc:
                self.status = ModelStatus.FAILED
                self.load_error = f"{type(exc).__name__}: {exc}"
                logger.error("model {} failed to load: {}", self.id, self.load_error)
                if isinstance(exc, SpeechEngineError):
                    raise
                raise ModelLoadError(f"model {self.id!r} could not be loaded: {exc}") from exc
            self.status = ModelStatus.LOADED
            self.load_error = None
            self.last_used = self.clock()
            self.observer.model_loaded(self.id, time.perf_counter() - t0)
            return self.info

    async def submit(self, capability: Capability, item: object, trace: RequestTrace | None = None) -> object:
        trace = trace if trace is not None else RequestTrace()
        await self.ensure_loaded()
        self.active += 1  # no await since the load check: an unload cannot slip in between
        try:
            key = await self.executor.check(capability, item)
            stepper = self.family_cls.stepper(capability, item, self.family_options)
            try:
                if stepper is None:
                    result = await self.scheduler.submit(capability, item, key, trace)
                else:
                    async with aclosing(stepped(self._step_submitter(capability, trace), stepper)) as steps:
                        async for _ in steps:
                            pass
                    result = stepper.result()
            except QueueFullError:
                self.observer.rejected(self.id)
                raise
        finally:
            self.active -= 1
            self.last_used = self.clock()
            if self.active == 0:
                async with self._idle:
                    self._idle.notify_all()
        audio_in = getattr(item, "duration", 0.0) or 0.0
        audio_out = result.duration if hasattr(result, "audio") else 0.0
        trace.audio_s = audio_in or audio_out
        self.observer.request_done(self.id, capability, trace, audio_in, audio_out)
        return result

    async def submit_each(self, capability: Capability, items: Sequence[Any],
                          trace: RequestTrace | None = None) -> AsyncIterator[Any]:
        """Validate every item now, then return an iterator of their results in order, each item its
        own scheduler unit (see streams.ordered). The model counts as busy until the iterator ends
        or is closed: iterate or close it. ``trace`` times the first item (what delays first output)."""
        trace = trace if trace is not None else RequestTrace()
        await self.ensure_loaded()
        self._hold()
        try:
            keys = [await self.executor.check(capability, item) for item in items]
        except BaseException:
            self._release()
            raise

        def submit(pair: tuple[Any, tuple], continued: bool) -> Awaitable[Any]:
            return self.scheduler.submit(capability, pair[0], pair[1], None if continued else trace,
                                         admitted=continued)

        audio_in = sum(getattr(item, "duration", 0.0) or 0.0 for item in items)
        return self._held(ordered(submit, list(zip(items, keys))), capability, trace, audio_in)

    async def stream(self, capability: Capability, item: object,
                     trace: RequestTrace | None = None) -> AsyncIterator[Any]:
        """Validate now, then return an iterator of the family's partial outputs for ``item`` as the
        worker produces them (see streams.generate). Busy until it ends or is closed: iterate or
        close it; closing stops the worker at its next output."""
        trace = trace if trace is not None else RequestTrace()
        await self.ensure_loaded()
        stepper = self.family_cls.stepper(capability, item, self.family_options)
        if stepper is None and not self.executor.streams(capability):
            raise UnsupportedCapabilityError(
                f"model {self.id!r} cannot stream {capability.value} results here "
                f"(family {self.config.family}, {self.executor.kind} executor)", param="stream")
        self._hold()
        try:
            await self.executor.check(capability, item)
        except BaseException:
            self._release()
            raise
        if stepper is not None:
            outputs = stepped(self._step_submitter(capability, trace), stepper)
        else:
            outputs = generate(lambda work, job: self.scheduler.submit(work, job, job, trace), capability, item)
        return self._held(outputs, capability, trace, getattr(item, "duration", 0.0) or 0.0)

    def _step_submitter(self, capability: Capability, trace: RequestTrace) -> Callable[[Any, bool], Awaitable[Any]]:
        """Submits one step of a request; the request's trace adds up its steps' waits and runs."""
        work = Stepped(capability)

        async def submit(step: Any, continued: bool) -> Any:
            part = RequestTrace()
            try:
                return await self.scheduler.submit(work, step, step.batch_key, part, admitted=continued)
            finally:
                trace.queue_wait_s += part.queue_wait_s
                trace.run_s += part.run_s
                trace.batch_size = max(trace.batch_size, part.batch_size)

        return submit

    async def open_chunks(self, capability: Capability) -> ModelInfo:
        """Load the model and hold it busy for one live stream of ``capability`` chunks, until
        ``close_chunks``. Returns the model's info (``frame_samples``: the unit of a chunk)."""
        info = await self.ensure_loaded()
        if info.frame_samples is None:
            raise UnsupportedCapabilityError(
                f"model {self.id!r} cannot take {capability.value} input as a live stream "
                f"(family {self.config.family})", param="model")
        self._hold()
        return info

    async def submit_chunk(self, capability: Capability, item: object, trace: RequestTrace, *,
                           first: bool) -> Any:
        """One chunk of an open stream; only a stream's first chunk can be refused for a full queue."""
        try:
            return await self.scheduler.submit(Stepped(capability), item, (), trace, admitted=not first)
        except QueueFullError:
            self.observer.rejected(self.id)
            raise

    def close_chunks(self, capability: Capability, trace: RequestTrace | None, audio_in: float) -> None:
        """End a stream opened with ``open_chunks``; a completed one (``trace`` given) is reported
        as one request. Synchronous, so it also runs under a cancel scope."""
        if trace is not None:
            trace.audio_s = audio_in
            self.observer.request_done(self.id, capability, trace, audio_in, 0.0)
        self._release()

    def _hold(self) -> None:
        self.active += 1

    def _release(self) -> None:
        """Synchronous, so that it also completes under a cancel scope that interrupts awaits."""
        self.active -= 1
        self.last_used = self.clock()
        if self.active == 0:
            task = asyncio.get_running_loop().create_task(self._notify_idle())
            self._notifiers.add(task)  # the loop holds tasks weakly
            task.add_done_callback(self._notifiers.discard)

    async def _notify_idle(self) -> None:
        async with self._idle:
            self._idle.notify_all()

    async def _held(self, outputs: AsyncIterator[Any], capability: Capability, trace: RequestTrace,
                    audio_in: float) -> AsyncIterator[Any]:
        """``outputs`` with the model held busy, reported like one request when they are complete."""
        audio_out = 0.0
        try:
            async with aclosing(outputs):
                async for output in outputs:
                    self.last_used = self.clock()
                    audio_out += output.duration if hasattr(output, "audio") else 0.0
                    yield output
            trace.audio_s = audio_in or audio_out
            self.observer.request_done(self.id, capability, trace, audio_in, audio_out)
        finally:
            self._release()

    def idle_for(self, now: float) -> float | None:
        """Seconds since the last request if the model is loaded and idle, else None."""
        if self.status is not ModelStatus.LOADED or self.active:
            return None
        return now - self.last_used

    async def unload(self, reason: str) -> None:
        """Unload once no request is in flight; requests arriving meanwhile wait, then reload."""
        async with self._load_lock:
            if self.status is not ModelStatus.LOADED:
                return
            self.status = ModelStatus.UNLOADING  # new requests now queue on the load lock
            async with self._idle:
                await self._idle.wait_for(lambda: self.active == 0)
            await self.executor.shutdown()
            self.status = ModelStatus.UNLOADED
            self.info = None
            logger.info("unloaded model {} ({})", self.id, reason)
            self.observer.model_unloaded(self.id, reason)

    async def close(self) -> None:
        await self.scheduler.close()
        await self.executor.shutdown()
        self.status = ModelStatus.UNLOADED
