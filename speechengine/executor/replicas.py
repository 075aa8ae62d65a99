"""Replica pools: a model served by N replicas that live outside this process (child processes,
Ray actors). Shared by the process and Ray executors.

Each batch goes to the live replica with the fewest calls in flight. When a replica dies, its
in-flight calls fail with ReplicaDied; the pool retries each such call once on another live
replica (every batch method is a pure function of its inputs, so a retry is safe) and otherwise
answers 503 (ServiceUnavailableError). A dead replica is restarted in the background, with a
growing pause between failed attempts, while the others keep serving. A watchdog notices
replicas that die while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.errors import ServiceUnavailableError
from speechengine.executor.base import Executor, ReplicaHealth
from speechengine.models.base import ModelInfo

WATCH_INTERVAL_S = 0.5
RESTART_BACKOFF_S = (0.5, 1, 2, 5, 10)


class ReplicaDied(Exception):
    """The replica handling a call is gone (killed, crashed, out of memory)."""


@dataclass(eq=False)
class _Replica:
    index: int
    handle: Any = None
    alive: bool = False
    inflight: int = 0
    restarts: int = 0
    restarting: asyncio.Task | None = None


class ReplicaPool(Executor):
    """Subclasses say how to start, call, probe and stop one replica."""

    # --- what a kind of replica implements ----------------------------------------------------

    @abstractmethod
    async def _spawn(self, index: int) -> Any:
        """Start replica ``index`` (not yet loaded) and return its handle."""

    @abstractmethod
    async def _call(self, handle: Any, method: str, *args: Any) -> Any:
        """Call a Worker method in the replica; raise ReplicaDied if the replica is gone."""

    @abstractmethod
    async def _is_alive(self, handle: Any) -> bool:
        """Cheap liveness probe for the watchdog."""

    @abstractmethod
    async def _stop(self, handle: Any, *, force: bool) -> None:
        """Stop the replica (politely unless ``force``); never raises."""

    @abstractmethod
    def _pid(self, handle: Any) -> int | None:
        """The replica's OS process id, if known."""

    # --- the pool -----------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replicas: list[_Replica] = []
        self._watchdog: asyncio.Task | None = None
        self._closed = False

    async def load(self) -> ModelInfo:
        self._closed = False
        self._replicas = [_Replica(i) for i in range(self.config.replicas)]
        try:
            infos = await asyncio.gather(*(self._start(r) for r in self._replicas))
        except BaseException:
            await self.shutdown()
            raise
        self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name=f"watchdog:{self.config.id}")
        return infos[0]

    async def _start(self, replica: _Replica) -> ModelInfo:
        replica.handle = await self._spawn(replica.index)
        info = await self._call(replica.handle, "load")
        replica.alive = True
        logger.info("model {}: {} replica {} ready (pid {})", self.config.id, self.kind, replica.index,
                    self._pid(replica.handle))
        return info

    async def check(self, capability: Capability, item: object) -> tuple:
        return await self._dispatch("check", capability, item)

    async def run(self, capability: Capability, items: list) -> list:
        return await self._dispatch("run_batch", capability, items)

    async def _dispatch(self, method: str, *args: Any) -> Any:
        tried: set[int] = set()
        while True:
            replica = self._pick(exclude=tried)
            tried.add(replica.index)
            handle = replica.handle
            replica.inflight += 1
            try:
                return await self._call(handle, method, *args)
            except ReplicaDied as exc:
                self._on_death(replica, handle, exc)
                if len(tried) >= 2:  # retried once already
                    raise ServiceUnavailableError(
                        f"model {self.config.id!r}: the replica running this request died ({exc}); retry"
                    ) from None
                logger.warning("model {}: {} on replica {} lost with it; retrying once on another replica",
                               self.config.id, method, replica.index)
            finally:
                replica.inflight -= 1

    def _pick(self, exclude: set[int]) -> _Replica:
        live = [r for r in self._replicas if r.alive and r.index not in exclude]
        if not live:
            raise ServiceUnavailableError(
                f"model {self.config.id!r} has no live replica right now (restarting); retry shortly"
            )
        return min(live, key=lambda r: r.inflight)

    def _on_death(self, replica: _Replica, handle: Any, reason: object) -> None:
        if self._closed or replica.handle is not handle or replica.restarting is not None:
            return  # already handled, or a newer incarnation is in place
        replica.alive = False
        logger.error("model {}: {} replica {} (pid {}) died: {}; restarting it", self.config.id, self.kind,
                     replica.index, self._pid(handle), reason)
        replica.restarting = asyncio.get_running_loop().create_task(self._restart(replica, handle))

    async def _restart(self, replica: _Replica, old: Any) -> None:
        await self._stop(old, force=True)
        attempt = 0
        try:
            while not self._closed:
                try:
                    await self._start(replica)
                    replica.restarts += 1
                    return
                except Exception as exc:
                    pause = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
                    logger.error("model {}: restarting replica {} failed ({}: {}); again in {} s",
                                 self.config.id, replica.index, type(exc).__name__, exc, pause)
                    if replica.handle is not None:
                        await self._stop(replica.handle, force=True)
                    attempt += 1
                    await asyncio.sleep(pause)
        finally:
            replica.restarting = None

    async def _watch(self) -> None:
        while not self._closed:
            await asyncio.sleep(WATCH_INTERVAL_S)
            for replica in self._replicas:
                handle = replica.handle
                if replica.alive and not await self._is_alive(handle):
                    self._on_death(replica, handle, "found dead by the watchdog")

    def health(self) -> list[ReplicaHealth]:
        return [ReplicaHealth(r.index, r.alive, self._pid(r.handle) if r.handle is not None else None,
                              r.inflight, r.restarts) for r in self._replicas]

    async def shutdown(self) -> None:
        self._closed = True
        tasks = [t for t in (self._watchdog, *(r.restarting for r in self._replicas)) if t is not None]
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._watchdog = None
        await asyncio.gather(*(self._stop(r.handle, force=False) for r in self._replicas if r.handle is not None))
        for r in self._replicas:
            r.alive, r.handle, r.restarting = False, None, None
