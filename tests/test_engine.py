"""Unit tests of the engine with a fake family: name resolution, capability checks, loading once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from speechengine.capabilities import Capability, STTInput, TTSInput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine, ModelStatus
from speechengine.errors import ModelLoadError, ModelNotFoundError, UnsupportedCapabilityError
from speechengine.models import registry
from tests.fakes import FakeTTS


@pytest.fixture
def fake_family(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.FAMILIES, "fake-tts", "tests.fakes:FakeTTS")
    registry.family_class.cache_clear()
    FakeTTS.loads = 0
    yield
    registry.family_class.cache_clear()


def settings(tmp_path, **model) -> Settings:
    m = {"id": "fake", "family": "fake-tts", "aliases": ["tts-1"], "weights": {"local": str(tmp_path)},
         "preload": False, **model}
    return Settings(cache_dir=tmp_path, models=[m])


async def test_submit_by_alias_runs_in_a_worker_thread(fake_family, tmp_path):
    engine = AsyncEngine(settings(tmp_path))
    out = await engine.submit("tts-1", Capability.TTS, TTSInput(text="abcd", voice="v1"))
    assert len(out.audio) == 4 and out.sample_rate == 8000
    family = engine.resolve("fake").executor.worker.family
    assert family.last_thread != threading.current_thread().name
    assert family.last_thread.startswith("worker-fake")
    await engine.stop()


async def test_unknown_model_and_wrong_capability(fake_family, tmp_path):
    engine = AsyncEngine(settings(tmp_path))
    with pytest.raises(ModelNotFoundError) as e:
        await engine.submit("nope", Capability.TTS, TTSInput(text="a", voice="v1"))
    assert e.value.status == 404 and "tts-1" in e.value.message
    with pytest.raises(UnsupportedCapabilityError) as e:
        await engine.submit("fake", Capability.STT, STTInput(audio=None))
    assert e.value.status == 400 and e.value.param == "model"
    assert FakeTTS.loads == 0  # rejected before loading anything
    await engine.stop()


async def test_concurrent_first_requests_load_once(fake_family, tmp_path):
    engine = AsyncEngine(settings(tmp_path, options={"load_seconds": 0.2}))
    dep = engine.resolve("fake")
    assert dep.status is ModelStatus.UNLOADED
    outs = await asyncio.gather(*(engine.submit("fake", Capability.TTS, TTSInput(text="x" * i, voice="v1"))
                                  for i in range(1, 6)))
    assert [len(o.audio) for o in outs] == [1, 2, 3, 4, 5]
    assert FakeTTS.loads == 1 and dep.status is ModelStatus.LOADED
    await engine.stop()


async def test_failed_load_is_503_and_reported(fake_family, tmp_path):
    engine = AsyncEngine(settings(tmp_path, options={"fail_load": True}))
    with pytest.raises(ModelLoadError) as e:
        await engine.submit("fake", Capability.TTS, TTSInput(text="a", voice="v1"))
    assert e.value.status == 503 and "weights are corrupt" in e.value.message
    dep = engine.resolve("fake")
    assert dep.status is ModelStatus.FAILED and "corrupt" in dep.load_error
    await engine.stop()


async def test_preload_loads_at_start(fake_family, tmp_path):
    engine = AsyncEngine(settings(tmp_path, preload=True))
    await engine.start()
    assert engine.resolve("fake").status is ModelStatus.LOADED and FakeTTS.loads == 1
    await engine.stop()
