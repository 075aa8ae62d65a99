"""Local executor: a model's batches run in this process on a pool of worker threads.

Blocking inference never touches the event loop: the loop awaits a future that the pool thread
completes (thread-safely, through ``run_in_executor``). Libraries used here (ONNX Runtime,
CTranslate2) release the GIL while they compute, so threads give real parallelism.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig, RaySettings
from speechengine.executor.base import Executor, ReplicaHealth
from speechengine.models.base import ModelInfo
from speechengine.worker import Worker


class LocalExecutor(Executor):
    kind = "local"

    def __init__(self, config: ModelConfig, cache_dir: Path, ray: RaySettings) -> None:
        super().__init__(config, cache_dir, ray)
        self.worker = Worker(config, cache_dir)
        self._pool: ThreadPoolExecutor | None = None
        self._inflight = 0

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix=f"worker-{self.config.id}")
        return self._pool

    async def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads(), fn, *args)

    async def load(self) -> ModelInfo:
        return await self._off_loop(self.worker.load)

    async def check(self, capability: Capability, item: object) -> tuple:
        return self.worker.check(capability, item)  # cheap and in memory: no thread hop

    async def run(self, capability: Capability, items: list) -> list:
        self._inflight += 1
        try:
            return await self._off_loop(self.worker.run_batch, capability, items)
        finally:
            self._inflight -= 1

    def health(self) -> list[ReplicaHealth]:
        return [ReplicaHealth(0, self.worker.family is not None, os.getpid(), self._inflight, 0)]

    async def shutdown(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(None, lambda: pool.shutdown(wait=True, cancel_futures=True))
        self.worker.unload()
