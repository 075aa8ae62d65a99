"""Unit tests of the engine's streams with fake families: pieces through the scheduler in order and
shared between requests, worker streams handed to the event loop, cancellation, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import aclosing
from typing import ClassVar, Iterator

import numpy as np
import pytest

from speechengine.capabilities import Capability, Segment, STTInput, TTSInput, TTSOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.errors import InferenceError, QueueFullError, UnsupportedCapabilityError
from speechengine.models import registry
from speechengine.models.base import ModelFamily, ModelInfo
from speechengine.scheduler import BatchScheduler


class RecordingTTS(ModelFamily):
    """Audio of one sample per character; records every batch it runs."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TTS})
    batches: ClassVar[list[list[str]]] = []

    def load(self) -> None:
        self.threads = 0  # it sleeps: no core of the thread budget to hold

    def info(self) -> ModelInfo:
        return ModelInfo(voices=("v1",), default_voice="v1", sample_rate=8000)

    def synthesize_batch(self, items: list[TTSInput]) -> list[TTSOutput]:
        RecordingTTS.batches.append([i.text for i in items])
        time.sleep(sum(1.0 if i.text == "Slow." else 0.02 for i in items))
        return [TTSOutput(np.full(len(i.text), 0.1, np.float32), 8000) for i in items]


class CountingSTT(ModelFamily):
    """Yields one segment per 'word' of the prompt, slowly; 'fail' as a word raises mid-stream."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STT})
    produced: ClassVar[list[str]] = []
    closed: ClassVar[threading.Event] = threading.Event()

    def load(self) -> None:
        self.threads = 0  # it sleeps: no core of the thread budget to hold

    def transcribe_batch(self, items: list[STTInput]) -> list:
        raise NotImplementedError

    def transcribe_stream(self, item: STTInput) -> Iterator[Segment]:
        try:
            for index, word in enumerate((item.prompt or "").split()):
                time.sleep(0.05)
                if word == "fail":
                    raise RuntimeError("decoder broke")
                CountingSTT.produced.append(word)
                yield Segment(index, 0, index, index + 1, f" {word}", (), 0.0, 0.0, 1.0, 0.0)
        finally:
            CountingSTT.closed.set()


class BatchOnlySTT(CountingSTT):
    transcribe_stream = None  # this family cannot stream


@pytest.fixture
def engine(monkeypatch, tmp_path):
    for name, cls in (("rec-tts", "RecordingTTS"), ("count-stt", "CountingSTT"), ("batch-stt", "BatchOnlySTT")):
        monkeypatch.setitem(registry.FAMILIES, name, f"tests.test_engine_streaming:{cls}")
    registry.family_class.cache_clear()
    RecordingTTS.batches = []
    CountingSTT.produced = []
    CountingSTT.closed = threading.Event()
    models = [
        {"id": "tts", "family": "rec-tts", "weights": {"local": str(tmp_path)}, "max_batch_size": 4,
         "max_wait_ms": 20},
        # beside a running batch, a long batching wait keeps a submitted piece in the queue long
        # enough to look at it
        {"id": "tts-patient", "family": "rec-tts", "weights": {"local": str(tmp_path)}, "max_wait_ms": 400,
         "workers": 2},
        {"id": "stt", "family": "count-stt", "weights": {"local": str(tmp_path)}, "workers": 1},
        {"id": "stt-batch", "family": "batch-stt", "weights": {"local": str(tmp_path)}},
    ]
    eng = AsyncEngine(Settings(cache_dir=tmp_path, models=models))
    yield eng
    registry.family_class.cache_clear()


def tts(text: str) -> TTSInput:
    return TTSInput(text=text, voice="v1")


async def settle(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_pieces_come_in_order_each_its_own_scheduler_unit(engine):
    text = "One. Two two. Three three three. Four four four four."
    async with aclosing(await engine.synthesize_stream("tts", tts(text))) as pieces:
        lengths = [len(p.audio) async for p in pieces]
    assert lengths == [4, 8, 18, 20]  # one output per sentence, in order
    sched = engine.resolve("tts").scheduler
    assert sched.stats.submitted == 4 and sched.stats.completed == 4
    # one piece of a stream in the scheduler at a time: never two of its pieces in one batch
    assert all(len(b) == 1 for b in RecordingTTS.batches)
    await engine.stop()


async def test_concurrent_streams_share_batches(engine):
    async def run(prefix: str) -> list[int]:
        text = " ".join(f"{prefix} sentence number {i}." for i in range(4))
        async with aclosing(await engine.synthesize_stream("tts", tts(text))) as pieces:
            return [len(p.audio) async for p in pieces]

    results = await asyncio.gather(run("alpha"), run("beta"), run("gamma"))
    assert all(len(r) == 4 for r in results)
    assert max(len(b) for b in RecordingTTS.batches) > 1  # pieces of different requests batched together
    for batch in RecordingTTS.batches:  # and never two pieces of the same request
        prefixes = [t.split()[0] for t in batch]
        assert len(prefixes) == len(set(prefixes))
    await engine.stop()


async def test_closing_a_piece_stream_drops_its_queued_piece(engine):
    sched = engine.resolve("tts-patient").scheduler
    busy = asyncio.create_task(engine.submit("tts-patient", Capability.TTS, tts("Slow.")))  # runs 1 s
    await settle(lambda: sched.running_batches == 1)
    pieces = await engine.synthesize_stream("tts-patient", tts("First. Second. Third. Fourth."))
    first = await anext(pieces)
    assert len(first.audio) == 6
    await asyncio.sleep(0.05)
    assert sched.queued == 1  # the second piece, submitted as soon as the first was done
    baseline_tasks = len(asyncio.all_tasks())
    await pieces.aclose()
    await busy
    await settle(lambda: sched.queued == 0 and sched.running_batches == 0)
    await settle(lambda: len(asyncio.all_tasks()) < baseline_tasks)
    assert sched.stats.cancelled == 1
    assert sched.stats.submitted == 3  # the slow request and two pieces: the third and fourth never were
    assert RecordingTTS.batches == [["Slow."], ["First."]]  # the second piece never ran
    await engine.stop()


async def test_worker_stream_outputs_arrive_as_produced_in_order(engine):
    item = STTInput(audio=np.zeros(16000, np.float32), prompt="a b c d e")
    got, seen_while_running = [], []
    async with aclosing(await engine.stream("stt", Capability.STT, item)) as segments:
        async for seg in segments:
            got.append(seg.text)
            seen_while_running.append(len(CountingSTT.produced) < 5)
    assert got == [" a", " b", " c", " d", " e"]
    assert seen_while_running[0]  # the first segment arrived before the last was produced
    sched = engine.resolve("stt").scheduler
    assert sched.stats.completed == 1 and sched.running_batches == 0
    await engine.stop()


async def test_closing_a_worker_stream_stops_the_worker_at_the_next_output(engine):
    item = STTInput(audio=np.zeros(16000, np.float32), prompt=" ".join(f"w{i}" for i in range(40)))
    segments = await engine.stream("stt", Capability.STT, item)
    assert (await anext(segments)).text == " w0"
    await segments.aclose()
    await asyncio.to_thread(CountingSTT.closed.wait, 3)  # the family's iterator was closed
    sched = engine.resolve("stt").scheduler
    await settle(lambda: sched.running_batches == 0)
    assert len(CountingSTT.produced) < 5  # stopped after the output in progress, not at the end
    # the slot is free: the next stream runs
    async with aclosing(await engine.stream("stt", Capability.STT, STTInput(np.zeros(10), prompt="x"))) as s:
        assert [seg.text async for seg in s] == [" x"]
    await engine.stop()


async def test_a_stream_closed_while_queued_never_runs(engine):
    sched = engine.resolve("stt").scheduler
    busy = await engine.stream("stt", Capability.STT, STTInput(np.zeros(10), prompt="a b c d e f"))
    await anext(busy)  # holds the only worker slot
    waiting = await engine.stream("stt", Capability.STT, STTInput(np.zeros(10), prompt="never"))
    waiter = asyncio.create_task(anext(waiting))
    await settle(lambda: sched.queued == 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await waiting.aclose()
    assert sched.queued == 0
    async with aclosing(busy):
        rest = [seg.text async for seg in busy]
    assert rest == [" b", " c", " d", " e", " f"]
    assert "never" not in CountingSTT.produced
    await engine.stop()


async def test_failure_mid_stream_reaches_the_consumer_after_the_outputs_before_it(engine):
    item = STTInput(audio=np.zeros(10), prompt="one two fail three")
    got = []
    with pytest.raises(InferenceError, match="decoder broke"):
        async with aclosing(await engine.stream("stt", Capability.STT, item)) as segments:
            async for seg in segments:
                got.append(seg.text)
    assert got == [" one", " two"]
    await engine.stop()


async def test_a_family_without_a_stream_method_is_refused_before_anything_runs(engine):
    with pytest.raises(UnsupportedCapabilityError) as e:
        await engine.stream("stt-batch", Capability.STT, STTInput(np.zeros(10), prompt="a"))
    assert e.value.status == 400
    assert engine.resolve("stt-batch").scheduler.stats.submitted == 0
    await engine.stop()


async def test_a_full_queue_refuses_new_requests_but_not_the_next_piece_of_a_started_stream():
    gate = asyncio.Event()

    async def runner(capability, items):
        await gate.wait()
        return items

    sched = BatchScheduler("s", runner, max_batch_size=1, max_wait_ms=0, queue_limit=1)
    running = asyncio.create_task(sched.submit("tts", "a"))
    await settle(lambda: sched.running_batches == 1)
    queued = asyncio.create_task(sched.submit("tts", "b"))
    await settle(lambda: sched.queued == 1)
    with pytest.raises(QueueFullError):
        await sched.submit("tts", "new request")
    continued = asyncio.create_task(sched.submit("tts", "next piece", admitted=True))
    await settle(lambda: sched.queued == 2)
    gate.set()
    assert await asyncio.gather(running, queued, continued) == ["a", "b", "next piece"]
    await sched.close()


async def test_a_model_is_not_unloaded_while_a_stream_of_it_is_open(engine):
    dep = engine.resolve("tts")
    pieces = await engine.synthesize_stream("tts", tts("First. Second. Third."))
    await anext(pieces)
    assert dep.active == 1
    unload = asyncio.create_task(dep.unload("test"))
    await asyncio.sleep(0.1)
    assert not unload.done()  # waits for the stream
    await pieces.aclose()
    await asyncio.wait_for(unload, 5)
    assert dep.active == 0 and not dep.loaded
    await engine.stop()


async def test_a_complete_stream_is_reported_once_like_one_request(monkeypatch, tmp_path, engine):
    from speechengine.engine.observer import EngineObserver

    class Recorder(EngineObserver):
        def __init__(self) -> None:
            self.done: list[tuple] = []

        def request_done(self, model, capability, trace, audio_in_s, audio_out_s) -> None:
            self.done.append((model, capability, round(audio_out_s * 8000), trace.batch_size))

    observer = Recorder()
    eng = AsyncEngine(engine.settings, observer=observer)
    async with aclosing(await eng.synthesize_stream("tts", tts("One. Two two."))) as pieces:
        assert [len(p.audio) async for p in pieces] == [4, 8]
    assert observer.done == [("tts", Capability.TTS, 12, 1)]  # 12 samples of audio out, one request
    early = await eng.synthesize_stream("tts", tts("One. Two two."))
    await anext(early)
    await early.aclose()
    assert len(observer.done) == 1  # a stream the client abandoned is not a served request
    await eng.stop()
    await engine.stop()
