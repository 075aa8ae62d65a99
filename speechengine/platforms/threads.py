"""The thread budget: how many intra-op threads may compute at once in this process.

Every family states how many threads one call of its batch method keeps busy
(``ModelFamily.threads``); the worker takes that many tokens from this process's budget before the
call and gives them back after it. A call that does not fit waits, in arrival order, so two
models that each fit the cores alone (Whisper as 2 workers x 1 thread, Piper as one 2-thread
session) never oversubscribe them together. A request for more tokens than the budget holds is
clamped to the whole budget: such a call runs alone, and can never wait forever.

The budget is process-wide on purpose: cores belong to the OS process, not to one model or one
app, so every model loaded here draws from one budget. Its size is the ``threads`` setting (0:
all cores this process may use); a replica process (process executor, Ray actor) sizes its own
budget to its ``replica_threads``. GPU platforms skip the budget (their work is not on these cores).

Here too: ``threads_per_session`` (how many threads each of N parallel sessions gets when the
family's options leave it open) and ``pin_blas_threads`` (numpy's BLAS threads default to one, so
they do not fight ONNX Runtime's and CTranslate2's own threads).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadUse:
    """A snapshot of the budget's counters."""

    budget: int  # tokens (threads) in the budget
    in_use: int  # tokens held by calls running now
    peak: int  # most tokens held at once since the process started
    waits: int  # calls that had to wait for tokens
    wait_s: float  # seconds calls spent waiting, summed


class ThreadBudget:
    """Counting tokens with a fair (first come, first served) blocking acquire, for worker threads.

    Strict FIFO: a waiting call that needs more tokens than are free holds back the smaller calls
    behind it, so a 2-thread call is never starved by a stream of 1-thread calls.
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"a thread budget needs at least one thread, got {total}")
        self._cond = threading.Condition()
        self._total = total
        self._in_use = 0
        self._peak = 0
        self._waits = 0
        self._wait_s = 0.0
        self._queue: deque[object] = deque()  # one ticket per waiting call, in arrival order

    @property
    def total(self) -> int:
        return self._total

    def resize(self, total: int) -> None:
        """Change the budget's size (at start-up); calls holding tokens keep them."""
        if total < 1:
            raise ValueError(f"a thread budget needs at least one thread, got {total}")
        with self._cond:
            self._total = total
            self._cond.notify_all()

    def clamp(self, n: int) -> int:
        return min(max(n, 0), self._total)

    def acquire(self, n: int) -> int:
        """Block until ``n`` tokens (clamped to the budget) are free and every earlier waiter has
        been served; take them and return how many were taken (give exactly that to release)."""
        with self._cond:
            n = self.clamp(n)
            if n == 0:
                return 0
            if not self._queue and self._free() >= n:
                self._take(n)
                return n
            ticket = object()
            self._queue.append(ticket)
            self._waits += 1
            t0 = time.perf_counter()
            try:
                while not (self._queue[0] is ticket and self._free() >= min(n, self._total)):
                    self._cond.wait()
                n = min(n, self._total)  # the budget may have shrunk while we waited
                self._take(n)
            finally:
                self._queue.remove(ticket)
                self._wait_s += time.perf_counter() - t0
                self._cond.notify_all()  # the next in line may fit as well
            return n

    def release(self, n: int) -> None:
        if n <= 0:
            return
        with self._cond:
            if n > self._in_use:
                raise RuntimeError(f"releasing {n} threads, but only {self._in_use} are held")
            self._in_use -= n
            self._cond.notify_all()

    @contextmanager
    def hold(self, n: int) -> Iterator[int]:
        """``with budget.hold(threads):`` around one call."""
        taken = self.acquire(n)
        try:
            yield taken
        finally:
            self.release(taken)

    def usage(self) -> ThreadUse:
        with self._cond:
            return ThreadUse(self._total, self._in_use, self._peak, self._waits, self._wait_s)

    def _free(self) -> int:
        return self._total - self._in_use

    def _take(self, n: int) -> None:
        self._in_use += n
        self._peak = max(self._peak, self._in_use)


# The one budget of this process (see the module docstring for why it is process-wide).
_PROCESS_BUDGET = ThreadBudget(cpu_count())


def process_budget() -> ThreadBudget:
    return _PROCESS_BUDGET


def size_process_budget(threads: int) -> ThreadBudget:
    """Size this process's budget: ``threads`` tokens, or all cores this process may use for 0."""
    _PROCESS_BUDGET.resize(threads or cpu_count())
    return _PROCESS_BUDGET


def threads_per_session(sessions: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``sessions`` parallel sessions when the options leave it open:
    the budget (or ``cores``) shared out evenly, at least one each."""
    return max(1, (cores or _PROCESS_BUDGET.total) // max(1, sessions))


def pin_blas_threads() -> int:
    """Default numpy's BLAS/OpenMP threads to one (a user's own OMP_NUM_THREADS etc. win) and
    return the limit in force. The variables are read when a BLAS library loads, so this sets
    them for this process and the replica processes it starts; a BLAS library already loaded is
    limited through threadpoolctl."""
    for name in BLAS_ENV:
        os.environ.setdefault(name, "1")
    limit = int(os.environ["OPENBLAS_NUM_THREADS"] or 1)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return limit
        threadpool_limits(limits=limit, user_api="blas")
    return limit


def blas_threads() -> int:
    """Threads numpy's BLAS uses now (1 when it cannot be asked)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return 1
    return max((i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"), default=1)
