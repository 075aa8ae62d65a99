"""Voice conversion (world-vc) end to end: converting one fixture speaker toward another moves the
speaker embedding toward the target and keeps the words."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.audio_utils import decode, fold
from tests.conftest import FIXTURES
from tests.speaker_similarity import cosine, resemblyzer_available

RATE = 16000


def _wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def speakers() -> dict[str, np.ndarray]:
    from speechengine.audio import decode_audio

    stereo, rate = sf.read(FIXTURES / "stereo_diarization.wav", dtype="float32")
    assert rate == RATE
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), RATE)
    return {"jfk": jfk, "left": np.ascontiguousarray(stereo[:, 0]), "right": np.ascontiguousarray(stereo[:, 1])}


def _convert(http, source: np.ndarray, reference: np.ndarray, **data) -> np.ndarray:
    r = http.post("/v1/audio/voice-conversion",
                  files={"file": ("src.wav", _wav(source)), "reference": ("ref.wav", _wav(reference))},
                  data={"model": "world-vc", "response_format": "wav", **data})
    assert r.status_code == 200, r.text
    out = decode(r.content)
    assert out.sample_rate == RATE and out.channels == 1
    return out.samples


def _transcribe(client, audio: np.ndarray) -> str:
    return fold(client.audio.transcriptions.create(model="whisper-tiny-en", file=("a.wav", _wav(audio))).text)


def _kept_words(source: str, converted: str) -> float:
    want, got = source.split(), converted.split()
    remaining = list(got)
    kept = 0
    for w in want:
        if w in remaining:
            remaining.remove(w)
            kept += 1
    return kept / len(want)


@pytest.mark.parametrize("src,tgt", [("jfk", "left"), ("left", "jfk")])
def test_conversion_moves_toward_target_and_keeps_words(http, client, speakers, src, tgt, record_property):
    source, target = speakers[src], speakers[tgt]
    converted = _convert(http, source, target)
    assert abs(len(converted) - len(source)) <= RATE // 100

    before, after = cosine(source, target), cosine(converted, target)
    record_property("dvector_gain", after - before)
    print(f"{src}->{tgt}: d-vector cosine to target {before:.3f} -> {after:.3f} ({after - before:+.3f})")
    assert after - before >= 0.10
    if resemblyzer_available():
        r_before, r_after = cosine(source, target, "resemblyzer"), cosine(converted, target, "resemblyzer")
        print(f"{src}->{tgt}: resemblyzer cosine {r_before:.3f} -> {r_after:.3f} ({r_after - r_before:+.3f})")
        assert r_after > r_before

    said, kept = _transcribe(client, source), _transcribe(client, converted)
    print(f"{src}->{tgt}: {said!r} -> {kept!r}")
    assert _kept_words(said, kept) >= 0.8


def test_strength_zero_is_milder_than_strength_one(http, speakers):
    """The nearest-neighbour blend is live: more strength, more change from the plain conversion."""
    source, target = speakers["left"], speakers["jfk"]
    mild = _convert(http, source, target, strength="0")
    strong = _convert(http, source, target, strength="1")
    assert not np.allclose(mild, strong, atol=1e-3)
    assert cosine(strong, target) > cosine(mild, target)


def test_same_reference_twice_gives_the_same_audio(http, speakers):
    """The second request reuses the cached target profile; conversion is deterministic."""
    a = _convert(http, speakers["left"], speakers["jfk"])
    b = _convert(http, speakers["left"], speakers["jfk"])
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_voice_and_reference_are_exclusive(http, speakers):
    r = http.post("/v1/audio/voice-conversion", files={"file": ("s.wav", _wav(speakers["left"]))},
                  data={"model": "world-vc"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "reference"
