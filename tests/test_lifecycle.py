"""Model lifetimes with a fake family and a controllable clock: idle TTL, busy models kept,
least-recently-used eviction; and the metrics observer on 429s."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from speechengine.capabilities import Capability, TTSInput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine, ModelStatus
from speechengine.errors import QueueFullError
from speechengine.metrics import Metrics
from speechengine.models import registry
from tests.fakes import FakeTTS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fake_family(monkeypatch):
    monkeypatch.setitem(registry.FAMILIES, "fake-tts", "tests.fakes:FakeTTS")
    registry.family_class.cache_clear()
    FakeTTS.loads = FakeTTS.unloads = 0
    yield
    registry.family_class.cache_clear()


def engine_with(tmp_path, *models, clock=None, observer=None, **top) -> AsyncEngine:
    cfgs = [{"family": "fake-tts", "weights": {"local": str(tmp_path)}, "preload": False, **m} for m in models]
    return AsyncEngine(Settings(cache_dir=tmp_path, models=cfgs, **top), clock=clock or FakeClock(),
                       observer=observer)


def say(text="hi"):
    return TTSInput(text=text, voice="v1")


async def test_ttl_unloads_after_idle_time(tmp_path):
    clock = FakeClock()
    engine = engine_with(tmp_path, {"id": "a", "ttl_s": 10}, {"id": "keep", "ttl_s": -1}, clock=clock)
    await engine.submit("a", Capability.TTS, say())
    await engine.submit("keep", Capability.TTS, say())
    clock.now += 9
    assert await engine.reap() == []
    clock.now += 1
    assert await engine.reap() == ["a"]
    assert engine.resolve("a").status is ModelStatus.UNLOADED and FakeTTS.unloads == 1
    clock.now += 10_000
    assert await engine.reap() == []  # ttl -1: kept forever
    assert engine.resolve("keep").status is ModelStatus.LOADED
    await engine.submit("a", Capability.TTS, say())  # comes back on the next request
    assert engine.resolve("a").status is ModelStatus.LOADED and FakeTTS.loads == 3
    await engine.stop()


async def test_ttl_zero_unloads_as_soon_as_idle(tmp_path):
    engine = engine_with(tmp_path, {"id": "a", "ttl_s": 0})
    await engine.submit("a", Capability.TTS, say())
    assert await engine.reap() == ["a"]
    await engine.stop()


async def test_busy_model_is_never_unloaded(tmp_path):
    clock = FakeClock()
    engine = engine_with(tmp_path, {"id": "a", "ttl_s": 0, "options": {"synth_seconds": 0.3}}, clock=clock)
    inflight = asyncio.create_task(engine.submit("a", Capability.TTS, say()))
    await asyncio.sleep(0.1)  # loaded and running now
    dep = engine.resolve("a")
    assert dep.status is ModelStatus.LOADED and dep.active == 1
    clock.now += 100
    assert await engine.reap() == []
    assert dep.status is ModelStatus.LOADED
    assert len((await inflight).audio) == 2
    assert await engine.reap() == ["a"]
    await engine.stop()


async def test_explicit_unload_waits_for_requests_in_flight(tmp_path):
    engine = engine_with(tmp_path, {"id": "a", "options": {"synth_seconds": 0.3}})
    inflight = asyncio.create_task(engine.submit("a", Capability.TTS, say("abc")))
    await asyncio.sleep(0.1)
    await engine.resolve("a").unload("test")
    assert inflight.done() and len(inflight.result().audio) == 3  # answered before the unload
    assert engine.resolve("a").status is ModelStatus.UNLOADED
    await engine.stop()


async def test_lru_eviction_with_max_loaded_models_1(tmp_path):
    clock = FakeClock()
    engine = engine_with(tmp_path, {"id": "a"}, {"id": "b"}, clock=clock, max_loaded_models=1)
    await engine.submit("a", Capability.TTS, say())
    clock.now += 1
    await engine.submit("b", Capability.TTS, say())
    assert engine.resolve("a").status is ModelStatus.UNLOADED
    assert engine.resolve("b").status is ModelStatus.LOADED
    clock.now += 1
    await engine.submit("a", Capability.TTS, say())
    assert [d.id for d in engine.deployments.values() if d.loaded] == ["a"]
    await engine.stop()


async def test_lru_never_evicts_a_busy_model(tmp_path):
    engine = engine_with(tmp_path, {"id": "a", "options": {"synth_seconds": 0.3}}, {"id": "b"}, max_loaded_models=1)
    inflight = asyncio.create_task(engine.submit("a", Capability.TTS, say()))
    await asyncio.sleep(0.1)
    await engine.submit("b", Capability.TTS, say())
    assert engine.resolve("a").status is ModelStatus.LOADED  # busy: kept, limit exceeded with a warning
    await inflight
    await engine.stop()


def _sample(metrics: Metrics, name: str, **labels) -> float:
    for fam in text_string_to_metric_families(metrics.render().decode()):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError(name)


async def test_queue_full_counts_a_rejection(tmp_path):
    metrics = Metrics()
    engine = engine_with(tmp_path, {"id": "a", "queue_limit": 1, "max_batch_size": 1,
                                    "options": {"synth_seconds": 0.3}}, observer=metrics)
    first = asyncio.create_task(engine.submit("a", Capability.TTS, say()))
    await asyncio.sleep(0.1)  # running
    second = asyncio.create_task(engine.submit("a", Capability.TTS, say()))
    await asyncio.sleep(0.02)  # queued: the queue is full
    assert _sample(metrics, "speechengine_queue_depth", model="a") == 1
    with pytest.raises(QueueFullError):
        await engine.submit("a", Capability.TTS, say())
    assert _sample(metrics, "speechengine_rejected_requests_total", model="a") == 1
    await asyncio.gather(first, second)
    assert _sample(metrics, "speechengine_batch_size_count", model="a", capability="tts") == 2
    assert _sample(metrics, "speechengine_loaded_models") == 1
    await engine.stop()
