"""An ASGI app under a real uvicorn on 127.0.0.1 in a thread of the test process, so that tests can
talk to it over sockets and also look inside its event loop (queues, tasks, threads)."""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn

from tests.conftest import free_port


class LiveServer:
    """``app`` under uvicorn in a background thread, with a handle on its event loop."""

    def __init__(self, app) -> None:
        self.app = app
        self.base_url = f"http://127.0.0.1:{free_port()}"
        port = int(self.base_url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 300
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)

    def inspect(self, fn):
        """Run ``fn()`` on the server's event loop and return its result."""
        async def call():
            return fn()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def schedulers(self):
        return [d.scheduler for d in self.app.state.engine.deployments.values()]

    def idle(self) -> bool:
        return self.inspect(lambda: all(s.queued == 0 and s.running_batches == 0 for s in self.schedulers()))

    def task_count(self) -> int:
        return self.inspect(lambda: len(asyncio.all_tasks()))

    def settled_task_count(self) -> int:
        """The task count once it has held still for half a second (closing connections finish)."""
        counts = [self.task_count()]
        while len(counts) < 6 or len(set(counts[-6:])) > 1:
            assert len(counts) < 400, f"task count never settled: {counts[-10:]}"
            time.sleep(0.1)
            counts.append(self.task_count())
        return counts[-1]

    def wait_until(self, predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "server did not settle"
            time.sleep(0.05)

    def __enter__(self) -> "LiveServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
