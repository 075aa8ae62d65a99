"""A batch gives each item what it gets alone, for the families whose batch methods loop over
items or run them as one call: silero-vad (whole files), deepfilternet3 and rnnoise (their
stream state starts afresh per item), world-vc. Real models in-process, loaded from config.yml
as the server loads them. (Whisper, the TTS families, live VAD chunks and the embedders have
their own batched-vs-alone tests: test_whisper_batching, test_tts_sessions, test_vad_stream,
test_embeddings.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from speechengine.audio import decode_audio
from speechengine.audio.decode import resample
from speechengine.capabilities import Capability, RestoreInput, SpeakerReference, VADInput, VCInput
from speechengine.config import load_settings
from speechengine.worker import Worker
from tests.conftest import FIXTURES, ROOT
from tests.test_whisper_batching import stereo_channels

RATE = 16000


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    settings = load_settings(ROOT / "config.yml")
    loaded = {}
    for model in settings.models:
        if model.family in ("silero-vad", "deepfilternet3", "rnnoise", "world-vc"):
            worker = Worker(model, cache)
            worker.load()
            loaded[model.family] = worker
    yield loaded
    for worker in loaded.values():
        worker.unload()


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), RATE)
    left, right = stereo_channels()
    return [jfk, left, right]


def noisy(clean: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(clean)).astype(np.float32)
    return clean + noise * 0.03


def alone_and_batched(worker: Worker, capability: Capability, items: list) -> tuple[list, list]:
    return [worker.run_batch(capability, [item])[0] for item in items], worker.run_batch(capability, items)


def test_silero_vad_batch_equals_alone(workers, speech):
    pad = np.zeros(RATE, np.float32)
    items = [VADInput(audio=np.concatenate([pad, s, pad])) for s in speech]
    alone, batched = alone_and_batched(workers["silero-vad"], Capability.VAD, items)
    assert batched == alone and all(out.segments for out in batched)


@pytest.mark.parametrize("family", ["deepfilternet3", "rnnoise"])
def test_denoisers_batch_equals_alone(workers, speech, family):
    worker = workers[family]
    rate = worker.family.info().sample_rate
    items = [RestoreInput(audio=noisy(resample(s, RATE, rate), i), sample_rate=rate) for i, s in enumerate(speech)]
    alone, batched = alone_and_batched(worker, Capability.RESTORE, items)
    for a, b, item in zip(alone, batched, items):
        assert len(a.audio) == len(b.audio) == len(item.audio)  # sample-aligned with the input
        assert np.abs(a.audio - b.audio).max() < 1e-5  # each item starts from a fresh state


def test_world_vc_batch_equals_alone(workers, speech):
    jfk, left, right = speech
    target = SpeakerReference(key="sha256:" + hashlib.sha256(left.tobytes()).hexdigest(), audio=left)
    items = [VCInput(audio=jfk, target=target), VCInput(audio=right, target=target, strength=0.8)]
    alone, batched = alone_and_batched(workers["world-vc"], Capability.VC, items)
    for a, b in zip(alone, batched):
        assert len(a.audio) == len(b.audio) > RATE
        assert np.abs(a.audio - b.audio).max() < 1e-5
