"""Local executor: a model's batches run in this process on a pool of worker threads.

Blocking inference never touches the event loop: the loop awaits a future that the pool thread
completes (thread-safely, through ``run_in_executor``). Libraries used here (ONNX Runtime,
CTranslate2) release the GIL while they compute, so threads give real parallelism.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


class LocalExecutor:
    def __init__(self, name: str, workers: int) -> None:
        self.name = name
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"worker-{name}")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
