"""Wide and narrow ONNX Runtime sessions of one model, for families that run a batch's items one
at a time (Piper, Kokoro: a padded batch measured slower than items in turn on CPU).

A lone item runs on the **wide** session, which uses the whole thread budget: a lone request on a
1-thread session measured ~1.7x the latency of a 2-thread one. A batch of 2+ items is spread
over N **narrow** sessions of ``max(1, cores // N)`` threads each, run in parallel by a small
thread pool: two 1-thread sessions measured ~1.14-1.2x the throughput of one 2-thread session
on 2 cores. Each narrow session serves one item at a time; outputs come back in input order.

``SessionOptions`` gives a family the two options; ``SessionSet`` does the rest. A family
hands it ``make(threads)``, which builds one runner (the family's own object holding a session
of ``threads`` intra-op threads, opened with ``ort_session``), and ``run(runner, item)``.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Sequence, TypeVar

from pydantic import Field

from speechengine.models.base import FamilyOptions
from speechengine.platforms import Platform
from speechengine.platforms.threads import threads_per_session

if TYPE_CHECKING:
    import onnxruntime

R = TypeVar("R")  # a runner: what a family synthesizes with (e.g. a PiperVoice holding one session)


def ort_session(model: str, threads: int, platform: Platform) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of ``threads`` intra-op threads on the platform's providers.

    It keeps ONNX Runtime's CPU memory arena, which holds on to each session's peak (Piper's three
    sessions: ~700 MB after a few sentences): without it Piper measured 1.1x slower alone and 1.2x
    in parallel, and Kokoro grew to 2.6 GB (malloc fragmenting over the pool's threads); one arena
    shared by the sessions held more, not less (Piper 761 MB, Kokoro 1.0 GB)."""
    import onnxruntime

    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model, sess_options=so, providers=list(platform.ort_providers))


class SessionOptions(FamilyOptions):
    """Options of a family that runs on a SessionSet; subclass it to add the family's own."""

    intra_op_threads: int = Field(0, ge=0, description="threads of the wide session, which runs a lone "
                                  "item; 0 = the platform's thread budget (the cores)")
    sessions: int = Field(0, ge=0, le=16, description="narrow sessions that run the items of a batch of "
                          "2+ in parallel, each with max(1, cores // sessions) threads; 0 = one per core "
                          "on CPU and none on a GPU; 1 = none (a batch's items run in turn on the wide session)")


@dataclass(frozen=True)
class SessionPlan:
    """How many sessions of how many intra-op threads a family loads."""

    wide_threads: int
    narrow: int  # narrow sessions; 0 = items of a batch run in turn on the wide session
    narrow_threads: int

    @classmethod
    def of(cls, options: SessionOptions, platform: Platform) -> SessionPlan:
        cores = max(1, platform.cpu_threads)
        wide = options.intra_op_threads or cores
        n = options.sessions or (1 if platform.is_gpu else cores)
        return cls(wide, n if n > 1 else 0, threads_per_session(n, cores))

    @property
    def threads(self) -> int:
        """The most intra-op threads one batch keeps busy."""
        return max(self.wide_threads, self.narrow * self.narrow_threads)


class SessionSet(Generic[R]):
    """One wide runner and ``plan.narrow`` narrow ones; ``map`` runs a batch over them.

    Batches running at once (a model with several ``workers``) share the runners and a budget of
    ``plan.threads`` cores: a run takes as many as its session has threads, so the sessions never
    oversubscribe them. A lone item takes the wide session only when the whole budget is free,
    else a narrow one (the cores are busy anyway, and a narrow session does not wait for them all).
    """

    def __init__(self, plan: SessionPlan, make: Callable[[int], R], name: str) -> None:
        self.plan = plan
        self.wide = make(plan.wide_threads)
        self._narrow: queue.SimpleQueue[R] = queue.SimpleQueue()
        for _ in range(plan.narrow):
            self._narrow.put(make(plan.narrow_threads))
        self._pool = ThreadPoolExecutor(plan.narrow, thread_name_prefix=name) if plan.narrow else None
        self._free = plan.threads  # cores not taken by a running session
        self._cores = threading.Condition()

    def map(self, run: Callable[[R, object], object], items: Sequence,
            size: Callable[[object], float] | None = None) -> list:
        """``run(runner, item)`` for each item, outputs in input order. Parallel items start largest
        first by ``size`` (e.g. text length), so the last to finish is a short one and no core
        idles long beside it. The first failure is raised once every item already started has
        finished, so all runners are back when this returns."""
        if self._pool is None or len(items) < 2:
            return [self._run_alone(run, item) for item in items]
        order = sorted(range(len(items)), key=lambda i: -size(items[i])) if size else range(len(items))
        futures: list = [None] * len(items)
        for i in order:
            futures[i] = self._pool.submit(self._run_narrow, run, items[i])
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending:  # something failed: drop what has not started, let what has finish
            for f in pending:
                f.cancel()
            wait(pending)
            raise next(f.exception() for f in futures if not f.cancelled() and f.exception() is not None)
        return [f.result() for f in futures]

    def _run_alone(self, run: Callable[[R, object], object], item: object) -> object:
        if not self._take(self.plan.wide_threads, wait=self._pool is None):
            return self._run_narrow(run, item)
        try:
            return run(self.wide, item)
        finally:
            self._give(self.plan.wide_threads)

    def _run_narrow(self, run: Callable[[R, object], object], item: object) -> object:
        runner = self._narrow.get()
        self._take(self.plan.narrow_threads, wait=True)
        try:
            return run(runner, item)
        finally:
            self._give(self.plan.narrow_threads)
            self._narrow.put(runner)

    def _take(self, n: int, *, wait: bool) -> bool:
        with self._cores:
            if not wait and self._free < n:
                return False
            self._cores.wait_for(lambda: self._free >= n)
            self._free -= n
            return True

    def _give(self, n: int) -> None:
        with self._cores:
            self._free += n
            self._cores.notify_all()

    def runners(self) -> list[R]:
        """Every runner, wide first (for warm-up and tests); queue.Empty if a batch holds one."""
        narrow = [self._narrow.get_nowait() for _ in range(self.plan.narrow)]
        for runner in narrow:
            self._narrow.put(runner)
        return [self.wide, *narrow]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
