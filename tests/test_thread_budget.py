"""The thread budget: unit tests of ThreadBudget with real threads, and a real server running
Whisper (2 workers x 1 thread) and Piper (one 2-thread session) from config.yml at once, whose
configured threads per model fit the cores while together they would not: the budget holds
calls back so that the threads in use never exceed the cores."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from speechengine.config import Settings, load_settings
from speechengine.platforms import ThreadBudget, cpu_count, size_process_budget, threads_per_session
from tests.conftest import ROOT, ServerProcess


def _wait_for(predicate, what: str) -> None:
    """Wait (on a condition, not a clock) until ``predicate`` holds; fail after a generous bound."""
    done = threading.Event()
    for _ in range(10_000):
        if predicate():
            return
        done.wait(0.001)
    raise AssertionError(f"never happened: {what}")


def _start(budget: ThreadBudget, n: int, order: list, name: str) -> threading.Thread:
    def run() -> None:
        with budget.hold(n):
            order.append(name)

    t = threading.Thread(target=run, name=name)
    t.start()
    return t


# --- ThreadBudget ---------------------------------------------------------------------------------


def test_requests_are_clamped_to_the_budget_so_a_big_call_runs_alone():
    budget = ThreadBudget(2)
    assert budget.acquire(8) == 2  # more than the budget: the whole budget, never a deadlock
    assert budget.usage().in_use == 2
    budget.release(2)
    assert budget.acquire(0) == 0  # a family that computes nothing of its own holds nothing
    assert budget.usage().in_use == 0
    with pytest.raises(RuntimeError):
        budget.release(1)  # more than is held
    with pytest.raises(ValueError):
        ThreadBudget(0)


def test_counters_in_use_peak_and_waits():
    budget = ThreadBudget(3)
    a = budget.acquire(1)
    b = budget.acquire(2)
    u = budget.usage()
    assert (u.budget, u.in_use, u.peak, u.waits) == (3, 3, 3, 0)
    order: list[str] = []
    t = _start(budget, 2, order, "late")
    _wait_for(lambda: budget.usage().waits == 1, "the call that does not fit waits")
    assert order == []
    budget.release(b)
    t.join()
    budget.release(a)
    u = budget.usage()
    assert (u.in_use, u.peak, u.waits) == (0, 3, 1)
    assert order == ["late"] and u.wait_s > 0


def test_waiters_are_served_first_come_first_served():
    """A 1-thread call that would fit does not overtake a 2-thread call that came first."""
    budget = ThreadBudget(2)
    held = budget.acquire(1)  # one of two free
    order: list[str] = []
    big = _start(budget, 2, order, "big")
    _wait_for(lambda: budget.usage().waits == 1, "the 2-thread call is queued")
    small = _start(budget, 1, order, "small")
    _wait_for(lambda: budget.usage().waits == 2, "the 1-thread call is queued behind it")
    assert budget.usage().in_use == 1 and order == []  # a thread is free, yet the small call waits its turn
    budget.release(held)
    big.join()
    small.join()
    assert order == ["big", "small"]
    assert budget.usage().in_use == 0


def test_many_threads_never_hold_more_than_the_budget():
    budget = ThreadBudget(3)
    lock = threading.Lock()
    held = [0]
    most = [0]

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            n = rng.randint(1, 4)  # 4 is clamped to 3
            with budget.hold(n) as taken:
                with lock:
                    held[0] += taken
                    most[0] = max(most[0], held[0])
                threading.Event().wait(rng.random() / 10_000)
                with lock:
                    held[0] -= taken

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    u = budget.usage()
    assert most[0] <= 3 and u.peak <= 3
    assert u.in_use == 0 and held[0] == 0
    assert u.waits > 0  # eight threads on three tokens: the budget had to hold some back


def test_resize_wakes_waiters():
    budget = ThreadBudget(1)
    held = budget.acquire(1)
    order: list[str] = []
    t = _start(budget, 1, order, "waiter")
    _wait_for(lambda: budget.usage().waits == 1, "the waiter is queued")
    budget.resize(2)
    t.join()
    assert order == ["waiter"]
    budget.release(held)


def test_threads_per_session_shares_the_cores_out():
    assert threads_per_session(1, cores=2) == 2
    assert threads_per_session(2, cores=2) == 1
    assert threads_per_session(4, cores=2) == 1  # never zero
    assert threads_per_session(2, cores=8) == 4


def test_replica_processes_count_against_the_cores():
    whisper = {"id": "w", "family": "faster-whisper", "weights": {"local": "/x"}, "executor": "process",
               "replicas": 2, "replica_threads": 2}
    vad = {"id": "v", "family": "silero-vad", "weights": {"local": "/x"}}
    settings = Settings(models=[whisper, vad])
    assert settings.replica_threads() == 4  # 2 replicas x 2 threads; the local model is in the server's budget
    joined = Settings(models=[{**whisper, "executor": "ray"}], ray={"address": "auto"})
    assert joined.replica_threads() == 0  # a joined Ray cluster runs its actors on its own nodes
    assert Settings().threads == 0  # 0: all cores


def test_engine_warns_when_replicas_oversubscribe_the_cores(tmp_path):
    from loguru import logger

    from speechengine.engine import AsyncEngine

    def process_model(replicas: int) -> dict:
        return {"id": "w", "family": "faster-whisper", "weights": {"local": str(tmp_path)}, "executor": "process",
                "replicas": replicas, "replica_threads": 1}

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    try:
        AsyncEngine(Settings(models=[process_model(cpu_count())]))  # fits: no warning (nothing starts here)
        assert not [m for m in messages if "oversubscribe" in m]
        engine = AsyncEngine(Settings(models=[process_model(cpu_count() + 1)], threads=1))
        assert [m for m in messages if "oversubscribe" in m]  # a warning, not an error: the engine exists
        assert engine.thread_budget.total == 1
    finally:
        logger.remove(sink)
        size_process_budget(0)  # all cores again for the tests that follow in this process


# --- a real server with two busy models -----------------------------------------------------------


TWO_MODELS = ("whisper-tiny-en", "piper-joe")


def _budget_for_test() -> int:
    """All cores (the default), unless there are so many that the two models fit them together."""
    return cpu_count() if cpu_count() < 4 else 2


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Whisper tiny.en and Piper as config.yml sets them up."""
    tmp = tmp_path_factory.mktemp("threads")
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    config["models"] = [m for m in config["models"] if m["id"] in TWO_MODELS]
    config["voices"] = {}
    if _budget_for_test() != cpu_count():
        config["threads"] = _budget_for_test()
    (tmp / "config.yml").write_text(yaml.safe_dump(config))
    with ServerProcess(tmp / "config.yml", tmp / "cache", tmp / "server.log") as srv:
        yield srv


def test_two_busy_models_never_use_more_threads_than_the_cores(two_models, jfk_bytes):
    from openai import OpenAI

    cores = _budget_for_test()  # cpu_count() on a machine of fewer than 4 cores (this one has 2)
    settings = load_settings(ROOT / "config.yml")
    configured = {m.id: m for m in settings.models}
    whisper, piper = configured["whisper-tiny-en"], configured["piper-joe"]
    # The configuration the test is about: each model fits the cores, the two together do not.
    whisper_threads = whisper.workers * whisper.options["cpu_threads"]
    # Piper's wide session (a lone item) takes every core unless set; its narrow sessions share them.
    piper_threads = piper.options.get("intra_op_threads") or cores
    assert whisper_threads <= cores and piper_threads <= cores
    assert whisper_threads + piper_threads > cores

    with OpenAI(base_url=two_models.base_url + "/v1", api_key="unused", max_retries=0, timeout=300) as sdk:
        def transcribe(_: int) -> str:
            return sdk.audio.transcriptions.create(model="whisper-tiny-en", file=("jfk.flac", jfk_bytes)).text

        def speak(i: int) -> bytes:
            return sdk.audio.speech.create(model="piper-joe", voice="joe", response_format="wav",
                                           input=f"Sentence number {i} is spoken while others are transcribed.").content

        with ThreadPoolExecutor(12) as pool:
            texts = pool.map(transcribe, range(6))
            speech = pool.map(speak, range(6))
            texts, speech = list(texts), list(speech)
    assert all("fellow americans" in t.lower() for t in texts)
    assert all(len(s) > 10_000 for s in speech)

    threads = httpx.get(two_models.base_url + "/health").json()["threads"]
    assert threads["budget"] == cores
    assert threads["models"] == {"whisper-tiny-en": whisper.options["cpu_threads"],
                                 "piper-joe": piper_threads}
    assert all(t <= cores for t in threads["models"].values())
    assert 0 < threads["peak"] <= threads["budget"]
    assert threads["waits"] > 0  # the budget held calls back: without it, the two would oversubscribe
    assert threads["in_use"] == 0  # every call gave its threads back

    metrics = httpx.get(two_models.base_url + "/metrics").text
    assert f"speechengine_thread_budget {float(cores)}" in metrics
    assert f"speechengine_thread_waits_total {float(threads['waits'])}" in metrics
    assert f'speechengine_threads_per_call{{model="piper-joe"}} {float(piper_threads)}' in metrics
