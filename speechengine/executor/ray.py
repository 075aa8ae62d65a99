"""Ray executor: each replica is a Ray actor hosting a Worker, placed by Ray on any node.

Without ``ray.address`` the server starts a local Ray runtime (no dashboard); with it the server
joins an existing cluster (``auto`` or ``ray://host:port``), so scaling out means starting Ray
on more machines. Each actor reserves ``num_cpus`` / ``num_gpus`` from config. Calls are awaited
as Ray object refs (asyncio integration), never blocking the event loop; ``ray.init`` and actor
teardown run in a thread. A dead actor (RayActorError) fails or retries its calls and is
restarted by the replica pool. Ray stays up until the server process exits (Ray's own atexit).
Each actor sizes its own process's thread budget to ``replica_threads``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from loguru import logger

from speechengine.config import ModelConfig, RaySettings
from speechengine.executor.replicas import ReplicaDied, ReplicaPool

PROBE_TIMEOUT_S = 10.0


class RayReplica:
    """The actor's body: a Worker plus its process id. Replies are (ok, value) so that our typed
    errors cross Ray unchanged instead of wrapped in RayTaskError."""

    def __init__(self, config: ModelConfig, cache_dir: Path, cpu_threads: int) -> None:
        from speechengine.platforms import pin_blas_threads, size_process_budget
        from speechengine.worker import Worker

        pin_blas_threads()
        size_process_budget(cpu_threads)  # the actor's process: its own budget, replica_threads wide
        self.worker = Worker(config, cache_dir, cpu_threads=cpu_threads)

    def call(self, method: str, *args: Any) -> tuple[bool, Any]:
        try:
            return True, getattr(self.worker, method)(*args)
        except Exception as exc:
            return False, exc

    def pid(self) -> int:
        return os.getpid()


def ensure_ray(settings: RaySettings) -> None:
    """Blocking: start a local Ray runtime or join the configured cluster, once per process."""
    import ray

    if ray.is_initialized():
        return
    common = dict(namespace=settings.namespace, ignore_reinit_error=True, log_to_driver=True)
    if settings.address is not None:
        logger.info("joining the Ray cluster at {}", settings.address)
        ray.init(address=settings.address, **common)
        return
    logger.info("starting a local Ray runtime (num_cpus={})", settings.num_cpus or "all")
    store = settings.object_store_memory_mb * 1024 * 1024 if settings.object_store_memory_mb else None
    ray.init(num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, object_store_memory=store,
             include_dashboard=False, **common)


class _Actor:
    def __init__(self, actor: Any, pid: int | None = None) -> None:
        self.actor = actor
        self.pid = pid


class RayExecutor(ReplicaPool):
    kind = "ray"

    async def _spawn(self, index: int) -> _Actor:
        import ray

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ensure_ray, self.ray_settings)
        cls = ray.remote(RayReplica).options(
            num_cpus=self.config.num_cpus if self.config.num_cpus is not None else 1,
            num_gpus=self.config.num_gpus or 0,
            max_concurrency=self.config.workers + 1,  # +1: checks and probes never wait behind a batch
        )
        # creating an actor exports its class to the cluster: a blocking round trip, so off the loop
        actor = await loop.run_in_executor(
            None, lambda: cls.remote(self.config, self.cache_dir, self.config.replica_threads))
        handle = _Actor(actor)
        timeout = self.ray_settings.place_timeout_s  # Ray keeps an unplaceable actor pending forever
        try:
            handle.pid = await asyncio.wait_for(self._guard(actor.pid.remote()), timeout)
        except asyncio.TimeoutError:
            await self._stop(handle, force=True)
            free = await asyncio.get_running_loop().run_in_executor(None, ray.available_resources)
            raise RuntimeError(
                f"Ray could not place a replica of {self.config.id!r} within {timeout:g} s "
                f"(it asks for num_cpus={self.config.num_cpus or 1}, num_gpus={self.config.num_gpus or 0}; "
                f"free now: {free})"
            ) from None
        return handle

    async def _guard(self, ref: Any) -> Any:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        try:
            return await ref
        except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:
            raise ReplicaDied(f"Ray actor died: {type(exc).__name__}") from None

    async def _call(self, handle: _Actor, method: str, *args: Any) -> Any:
        ok, value = await self._guard(handle.actor.call.remote(method, *args))
        if ok:
            return value
        raise value

    async def _is_alive(self, handle: _Actor) -> bool:
        try:
            await asyncio.wait_for(self._guard(handle.actor.pid.remote()), PROBE_TIMEOUT_S)
        except ReplicaDied:
            return False
        except asyncio.TimeoutError:
            return True  # busy, not dead: only a Ray actor error counts as death
        return True

    async def _stop(self, handle: _Actor, *, force: bool) -> None:
        import ray

        try:
            await asyncio.get_running_loop().run_in_executor(None, lambda: ray.kill(handle.actor, no_restart=True))
        except Exception as exc:  # already gone, or Ray is shutting down
            logger.debug("ray.kill: {}", exc)

    def _pid(self, handle: _Actor) -> int | None:
        return handle.pid
