"""A deployment: one configured model with its scheduler and executor, and its lifetime.

The executor (local threads, child processes or Ray actors) comes from the model's config through
the EXECUTORS table; the scheduler may run as many batches at once as the executor has slots
(replicas x workers). Loading happens once however many requests ask at the same time (an
asyncio lock), off the event loop so it keeps serving. Requests in flight are counted: a model with
requests in flight is never unloaded (idle TTL, LRU eviction and explicit unload all wait for or
skip busy models).
"""

from __future__ import annotations

import asyncio
import enum
import time
from pathlib import Path
from typing import Awaitable, Callable

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig, RaySettings
from speechengine.engine.observer import EngineObserver
from speechengine.errors import ModelLoadError, QueueFullError, SpeechEngineError
from speechengine.executor import make_executor
from speechengine.models.base import ModelInfo
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
        self.observer.watch_queue(config.id, lambda: self.scheduler.queued)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def loaded(self) -> bool:
        return self.status is ModelStatus.LOADED

    async def _run_batch(self, capability: Capability, items: list) -> list:
        t0 = time.perf_counter()
        outputs = await self.executor.run(capability, items)
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
            try:
                result = await self.scheduler.submit(capability, item, key, trace)
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
