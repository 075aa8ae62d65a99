"""A deployment: one configured model with its scheduler, executor and worker, and its status.

Loading happens once however many requests ask for it at the same time (an asyncio lock), in
an executor thread so the event loop keeps serving. Requests come in three shapes, all through
the scheduler: one input, one result (``submit``); several inputs, results in order
(``submit_each``); one input, outputs as they are produced (``stream``; see engine/streams.py).
"""

from __future__ import annotations

import asyncio
import enum
import time
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig
from speechengine.engine.streams import StreamJob, Streamed, generate, ordered
from speechengine.errors import ModelLoadError, SpeechEngineError, UnsupportedCapabilityError
from speechengine.executor import LocalExecutor
from speechengine.models.base import ModelFamily, ModelInfo
from speechengine.models.registry import family_class
from speechengine.scheduler import BatchScheduler
from speechengine.worker import Worker


class ModelStatus(str, enum.Enum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"


class Deployment:
    def __init__(self, config: ModelConfig, cache_dir: Path) -> None:
        self.config = config
        self.family_cls = family_class(config.family)
        self.capabilities: frozenset[Capability] = self.family_cls.capabilities
        self.worker = Worker(config, cache_dir)
        self.executor = LocalExecutor(config.id, config.workers)
        self.scheduler = BatchScheduler(
            config.id,
            self._run_batch,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            queue_limit=config.queue_limit,
            max_inflight=config.workers,
        )
        self.status = ModelStatus.UNLOADED
        self.info: ModelInfo | None = None
        self.load_error: str | None = None
        self.created = int(time.time())
        self._load_lock = asyncio.Lock()

    @property
    def id(self) -> str:
        return self.config.id

    async def _run_batch(self, work: Capability | Streamed, items: list) -> list:
        if isinstance(work, Streamed):  # a stream is a batch of one that emits while it runs
            job: StreamJob = items[0]
            return [await self.executor.run(self.worker.run_stream, work.capability, job.item, job.emit,
                                            job.cancelled)]
        return await self.executor.run(self.worker.run_batch, work, items)

    async def ensure_loaded(self) -> ModelInfo:
        if self.status is ModelStatus.LOADED and self.info is not None:
            return self.info
        async with self._load_lock:
            if self.status is ModelStatus.LOADED and self.info is not None:
                return self.info
            self.status = ModelStatus.LOADING
            logger.info("loading model {}", self.id)
            try:
                self.info = await self.executor.run(self.worker.load)
            except Exception as exc:
                self.status = ModelStatus.FAILED
                self.load_error = f"{type(exc).__name__}: {exc}"
                logger.error("model {} failed to load: {}", self.id, self.load_error)
                if isinstance(exc, SpeechEngineError):
                    raise
                raise ModelLoadError(f"model {self.id!r} could not be loaded: {exc}") from exc
            self.status = ModelStatus.LOADED
            self.load_error = None
            return self.info

    async def _family(self) -> ModelFamily:
        await self.ensure_loaded()
        family = self.worker.family
        assert family is not None
        return family

    async def submit(self, capability: Capability, item: object) -> object:
        family = await self._family()
        family.validate(capability, item)
        return await self.scheduler.submit(capability, item, family.batch_key(capability, item))

    async def submit_each(self, capability: Capability, items: Sequence[Any]) -> AsyncIterator[Any]:
        """Validate every item now, then return an iterator of their results in order, each item its
        own scheduler unit (see streams.ordered). Close the iterator to cancel what is left."""
        family = await self._family()
        for item in items:
            family.validate(capability, item)
        return ordered(lambda item, continued: self.scheduler.submit(
            capability, item, family.batch_key(capability, item), admitted=continued), items)

    async def stream(self, capability: Capability, item: object) -> AsyncIterator[Any]:
        """Validate now, then return an iterator of the family's partial outputs for ``item`` as the
        worker produces them (see streams.generate). Close the iterator to stop the worker."""
        family = await self._family()
        if not family.can_stream(capability):
            raise UnsupportedCapabilityError(
                f"model {self.id!r} cannot stream {capability.value} results", param="stream"
            )
        family.validate(capability, item)
        return generate(lambda work, job: self.scheduler.submit(work, job, job), capability, item)

    async def close(self) -> None:
        await self.scheduler.close()
        self.executor.shutdown()
        self.worker.unload()
        self.status = ModelStatus.UNLOADED
