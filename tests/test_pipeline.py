"""Unit test of the engine's TTS -> VC pipeline (custom voices) with fake families: two scheduled
requests, one per model, with the TTS output resampled to 16 kHz in between."""

from __future__ import annotations

import numpy as np
import pytest

from speechengine.capabilities import SpeakerReference, TTSInput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.errors import UnsupportedCapabilityError
from speechengine.models import registry
from tests.fakes import FakeVC


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setitem(registry.FAMILIES, "fake-tts", "tests.fakes:FakeTTS")
    monkeypatch.setitem(registry.FAMILIES, "fake-vc", "tests.fakes:FakeVC")
    registry.family_class.cache_clear()
    FakeVC.seen.clear()
    yield
    registry.family_class.cache_clear()


def _settings(tmp_path, with_vc: bool = True) -> Settings:
    models = [{"id": "tts", "family": "fake-tts", "weights": {"local": str(tmp_path)}, "preload": False}]
    if with_vc:
        models.append({"id": "vc", "family": "fake-vc", "weights": {"local": str(tmp_path)}, "preload": False})
    return Settings(cache_dir=tmp_path, models=models)


async def test_tts_then_vc_each_scheduled(fakes, tmp_path):
    engine = AsyncEngine(_settings(tmp_path))
    target = SpeakerReference(key="voice:x", audio=np.full(100, 0.5, np.float32))
    out = await engine.synthesize_in_voice("tts", TTSInput(text="x" * 800, voice="v1"), target)
    assert out.sample_rate == 16000
    assert len(FakeVC.seen) == 1 and FakeVC.seen[0].target is target
    assert abs(len(FakeVC.seen[0].audio) - 1600) <= 2  # 800 samples at 8 kHz, resampled to 16 kHz
    np.testing.assert_allclose(out.audio, 0.5, atol=1e-6)
    assert engine.resolve("tts").loaded and engine.resolve("vc").loaded
    await engine.stop()


async def test_no_vc_model_is_a_clear_error(fakes, tmp_path):
    engine = AsyncEngine(_settings(tmp_path, with_vc=False))
    with pytest.raises(UnsupportedCapabilityError) as e:
        await engine.synthesize_in_voice("tts", TTSInput(text="x", voice="v1"),
                                         SpeakerReference(key="k", audio=np.zeros(10, np.float32)))
    assert e.value.param == "voice"
    await engine.stop()
