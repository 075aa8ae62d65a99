"""A deployment: one configured model with its scheduler and executor, and its status.

The executor (local threads, child processes or Ray actors) comes from the model's config through
the EXECUTORS table; the scheduler may run as many batches at once as the executor has slots
(replicas x workers). Loading happens once however many requests ask for it at the same time (an
asyncio lock), off the event loop so it keeps serving.
"""

from __future__ import annotations

import asyncio
import enum
import time
from pathlib import Path

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig, RaySettings
from speechengine.errors import ModelLoadError, SpeechEngineError
from speechengine.executor import make_executor
from speechengine.models.base import ModelInfo
from speechengine.models.registry import family_class
from speechengine.scheduler import BatchScheduler


class ModelStatus(str, enum.Enum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"


class Deployment:
    def __init__(self, config: ModelConfig, cache_dir: Path, ray: RaySettings | None = None) -> None:
        self.config = config
        self.family_cls = family_class(config.family)
        self.capabilities: frozenset[Capability] = self.family_cls.capabilities
        self.executor = make_executor(config, cache_dir, ray or RaySettings())
        self.scheduler = BatchScheduler(
            config.id,
            self.executor.run,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            queue_limit=config.queue_limit,
            max_inflight=self.executor.concurrency,
        )
        self.status = ModelStatus.UNLOADED
        self.info: ModelInfo | None = None
        self.load_error: str | None = None
        self.created = int(time.time())
        self._load_lock = asyncio.Lock()

    @property
    def id(self) -> str:
        return self.config.id

    async def ensure_loaded(self) -> ModelInfo:
        if self.status is ModelStatus.LOADED and self.info is not None:
            return self.info
        async with self._load_lock:
            if self.status is ModelStatus.LOADED and self.info is not None:
                return self.info
            self.status = ModelStatus.LOADING
            logger.info("loading model {}", self.id)
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
            return self.info

    async def submit(self, capability: Capability, item: object) -> object:
        await self.ensure_loaded()
        key = await self.executor.check(capability, item)
        return await self.scheduler.submit(capability, item, key)

    async def close(self) -> None:
        await self.scheduler.close()
        await self.executor.shutdown()
        self.status = ModelStatus.UNLOADED
