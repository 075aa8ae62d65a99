"""Unit tests of live VAD streams in the engine with fake families: whole frames only go to the
scheduler, the state travels with the chunks (the worker keeps none), chunks of several streams
share a batch, and a cancelled or failed stream leaves neither queue entries nor a busy model."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import ClassVar

import numpy as np
import pytest

from speechengine.capabilities import Capability, VADChunkInput, VADChunkOutput, VADInput, VADOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine, VADStreamOptions
from speechengine.errors import UnsupportedCapabilityError
from speechengine.models import registry
from speechengine.models.base import ModelFamily, ModelInfo

FRAME = 4


class EchoVAD(ModelFamily):
    """Probability of a frame = its first sample; the state counts the frames seen so far. A batch
    with a negative sample holds the worker until ``release`` is set."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.VAD})
    batches: ClassVar[list[list[int]]] = []
    release: ClassVar[threading.Event] = threading.Event()

    def load(self) -> None:
        pass

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=16000, frame_samples=FRAME)

    def detect_batch(self, items: list[VADInput]) -> list[VADOutput]:
        raise NotImplementedError

    def detect_chunks(self, items: list[VADChunkInput]) -> list[VADChunkOutput]:
        EchoVAD.batches.append([len(i.audio) for i in items])
        if any(i.audio.min() < 0 for i in items):
            EchoVAD.release.wait(5)
        out = []
        for item in items:
            assert len(item.audio) % FRAME == 0
            seen = 0 if item.state is None else int(item.state[0][0])
            frames = item.audio.reshape(-1, FRAME)
            out.append(VADChunkOutput(frames[:, 0].copy(), (np.array([seen + len(frames)]),)))
        return out


class WholeOnlyVAD(EchoVAD):
    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=16000)  # no frame_samples: no live streams


@pytest.fixture
def engine(monkeypatch, tmp_path):
    for name, cls in (("echo-vad", "EchoVAD"), ("whole-vad", "WholeOnlyVAD")):
        monkeypatch.setitem(registry.FAMILIES, name, f"tests.test_engine_vad_stream:{cls}")
    registry.family_class.cache_clear()
    EchoVAD.batches = []
    EchoVAD.release = threading.Event()
    models = [
        {"id": "vad", "family": "echo-vad", "weights": {"local": str(tmp_path)}, "max_batch_size": 8,
         "max_wait_ms": 50},
        {"id": "whole", "family": "whole-vad", "weights": {"local": str(tmp_path)}},
    ]
    eng = AsyncEngine(Settings(cache_dir=tmp_path, models=models))
    yield eng
    registry.family_class.cache_clear()


def speech(frames: list[float]) -> np.ndarray:
    return np.repeat(np.asarray(frames, np.float32), FRAME)


async def test_whole_frames_go_out_with_the_state_and_segments_come_back(engine):
    audio = speech([0.0] * 3 + [0.9] * 5 + [0.0] * 20)
    audio = audio[:-1]  # the last frame is partial: zero-padded at the end, like a whole file
    opts = VADStreamOptions(min_silence_duration_ms=0, speech_pad_ms=0)
    events = []
    async with engine.vad_stream("vad", opts) as stream:
        for a, b in [(0, 3), (3, 3), (3, 10), (10, 40), (40, len(audio))]:  # pieces of odd sizes, one empty
            events += await stream.feed(audio[a:b])
        more, out = await stream.finish()
        events += more
        assert stream._state[0][0] == 28  # the frames the model saw, counted through the travelling state
    assert [n for batch in EchoVAD.batches for n in batch] == [8, 32, 68, 4]  # whole frames only
    frame_s = FRAME / 16000
    assert out.segments[0].start == round(3 * frame_s, 3) and out.segments[0].end == round(8 * frame_s, 3)
    assert out.duration == len(audio) / 16000
    assert [type(e).__name__ for e in events] == ["SpeechStarted", "SpeechStopped"]
    dep = engine.resolve("vad")
    assert dep.active == 0 and dep.scheduler.queued == 0


async def until(predicate) -> None:
    deadline = time.monotonic() + 3
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def blocker(engine) -> None:
    """A stream whose chunk holds the only worker until EchoVAD.release is set."""
    async with engine.vad_stream("vad", VADStreamOptions()) as stream:
        await stream.feed(speech([-1.0]))
        await stream.finish()


async def test_chunks_of_several_streams_share_a_batch(engine):
    async def one(level: float) -> VADOutput:
        async with engine.vad_stream("vad", VADStreamOptions()) as stream:
            await stream.feed(speech([level] * 3))
            return (await stream.finish())[1]

    dep = engine.resolve("vad")
    held = asyncio.create_task(blocker(engine))
    await until(lambda: len(EchoVAD.batches) == 1)
    streams = [asyncio.create_task(one(x)) for x in (0.1, 0.9, 0.2, 0.8)]
    await until(lambda: dep.scheduler.queued == 4)  # their first chunks wait behind the running batch
    EchoVAD.release.set()
    outs = await asyncio.gather(*streams)
    await held
    assert [len(o.segments) for o in outs] == [0, 1, 0, 1]  # each stream its own answer
    assert EchoVAD.batches[1] == [3 * FRAME] * 4  # the first chunks of all four streams, one call
    assert dep.active == 0


async def test_a_cancelled_stream_leaves_nothing_behind(engine):
    dep = engine.resolve("vad")

    async def victim() -> None:
        async with engine.vad_stream("vad", VADStreamOptions()) as stream:
            await stream.feed(speech([0.9] * 2))  # waits in the queue when cancelled

    held = asyncio.create_task(blocker(engine))
    await until(lambda: len(EchoVAD.batches) == 1)
    task = asyncio.create_task(victim())
    await until(lambda: dep.scheduler.queued == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dep.scheduler.queued == 0 and dep.active == 1  # only the blocker still holds the model
    assert dep.scheduler.stats.cancelled == 1
    EchoVAD.release.set()
    await held
    assert dep.active == 0 and dep.scheduler.queued == 0
    assert EchoVAD.batches == [[FRAME]]  # the blocker's frame; the victim's chunk never ran


async def test_a_family_without_chunks_cannot_stream(engine):
    with pytest.raises(UnsupportedCapabilityError):
        async with engine.vad_stream("whole", VADStreamOptions()):
            pass
    assert engine.resolve("whole").active == 0
