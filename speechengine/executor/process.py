"""Process executor: each replica is a child process (multiprocessing, spawn) hosting a Worker.

A crash in a model (SIGKILL, segfault, out of memory) ends only that child: the pipe to it
closes, its in-flight calls fail with ReplicaDied, and the replica pool retries or answers 503
and restarts the replica. Calls and results travel as pickles over a pipe; inputs and outputs
are frozen dataclasses of numpy arrays. In the child, a reader loop hands each call to a small
thread pool, so a validation check is not stuck behind a running batch.

A child's thread budget is its ``replica_threads``: however many workers it runs, its batches
keep at most that many intra-op threads busy, so ``replicas x replica_threads`` is what the
model's processes use (the engine warns at start when that exceeds the cores).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from speechengine.config import ModelConfig
from speechengine.errors import InferenceError
from speechengine.executor.replicas import ReplicaDied, ReplicaPool

_STOP = None  # the message that asks a child to exit


def _child_main(config: ModelConfig, cache_dir: Path, cpu_threads: int, conn: Connection) -> None:
    """Entry point of a replica process: serve Worker calls until the parent says stop or goes away."""
    from speechengine.platforms import pin_blas_threads, size_process_budget
    from speechengine.worker import Worker

    pin_blas_threads()
    size_process_budget(cpu_threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the server, which stops us
    worker = Worker(config, cache_dir, cpu_threads=cpu_threads)
    send_lock = threading.Lock()

    def serve(call_id: int, method: str, args: tuple) -> None:
        try:
            reply = (call_id, True, getattr(worker, method)(*args))
        except Exception as exc:
            reply = (call_id, False, exc)
        with send_lock:
            try:
                conn.send(reply)
            except (OSError, ValueError):
                return  # parent is gone
            except Exception as exc:  # an unpicklable result or exception
                conn.send((call_id, False, InferenceError(f"replica could not return its result: {exc!r}")))

    with ThreadPoolExecutor(max_workers=config.workers + 1, thread_name_prefix="replica") as pool:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is _STOP:
                break
            pool.submit(serve, *message)
    worker.unload()


class _Child:
    """The parent's side of one replica process: sends calls, resolves their futures."""

    def __init__(self, proc: multiprocessing.process.BaseProcess, conn: Connection,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.proc = proc
        self.conn = conn
        self.loop = loop
        self.pending: dict[int, asyncio.Future] = {}
        self.dead: str | None = None
        self._ids = itertools.count()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"send-{proc.pid}")
        threading.Thread(target=self._read, name=f"recv-{proc.pid}", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # a result that cannot be unpickled here
                self.loop.call_soon_threadsafe(self._fail_all, f"unreadable reply: {exc!r}")
                break
            self.loop.call_soon_threadsafe(self._resolve, call_id, ok, value)
        self.proc.join(timeout=5)
        self.loop.call_soon_threadsafe(self._fail_all, f"process exited with code {self.proc.exitcode}")

    def _resolve(self, call_id: int, ok: bool, value: Any) -> None:
        fut = self.pending.pop(call_id, None)
        if fut is None or fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def _fail_all(self, reason: str) -> None:
        self.dead = self.dead or reason
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ReplicaDied(reason))
        self.pending.clear()

    async def call(self, method: str, *args: Any) -> Any:
        if self.dead:
            raise ReplicaDied(self.dead)
        call_id = next(self._ids)
        fut = self.loop.create_future()
        self.pending[call_id] = fut
        try:
            await self.loop.run_in_executor(self._sender, self.conn.send, (call_id, method, args))
        except (OSError, ValueError, TypeError) as exc:  # broken pipe, or closed by a restart: the child is gone
            self.pending.pop(call_id, None)
            if isinstance(exc, TypeError) and not self.conn.closed:
                raise  # not the pipe: an argument that cannot be pickled
            raise ReplicaDied(f"cannot reach the process: {exc}") from None
        try:
            return await fut
        finally:
            self.pending.pop(call_id, None)

    def stop(self, force: bool) -> None:
        """Blocking: ask the child to exit, then terminate, then kill."""
        if not force and self.proc.is_alive():
            try:
                self.conn.send(_STOP)
            except (OSError, ValueError):
                pass
            self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()
        self._sender.shutdown(wait=False)


class ProcessExecutor(ReplicaPool):
    kind = "process"

    async def _spawn(self, index: int) -> _Child:
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=_child_main,
            args=(self.config, self.cache_dir, self.config.replica_threads, child_end),
            name=f"speechengine-{self.config.id}-{index}",
            daemon=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, proc.start)
        child_end.close()  # only the child holds it now, so its death reads as EOF here
        return _Child(proc, parent_end, asyncio.get_running_loop())

    async def _call(self, handle: _Child, method: str, *args: Any) -> Any:
        return await handle.call(method, *args)

    async def _is_alive(self, handle: _Child) -> bool:
        return handle.dead is None and handle.proc.is_alive()

    async def _stop(self, handle: _Child, *, force: bool) -> None:
        await asyncio.get_running_loop().run_in_executor(None, handle.stop, force)

    def _pid(self, handle: _Child) -> int | None:
        return handle.proc.pid
