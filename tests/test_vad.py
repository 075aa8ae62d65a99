"""/v1/audio/vad with the Silero model on real speech padded with real silence."""

from __future__ import annotations

import numpy as np
import pytest

from speechengine.audio import resample
from tests.audio_utils import decode, encode_file
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def padded_jfk() -> bytes:
    src = decode((FIXTURES / "jfk.flac").read_bytes())
    x = resample(src.samples, src.sample_rate, 16000)
    pad = np.zeros(32000, np.float32)
    return encode_file(np.concatenate([pad, x, pad]), 16000, "wav", "pcm_s16le")


def test_vad_finds_speech_inside_padding(http, padded_jfk):
    r = http.post("/v1/audio/vad", files={"file": ("jfk.wav", padded_jfk)}, data={"model": "silero-vad"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration"] == pytest.approx(15.0, abs=0.01)
    segs = body["segments"]
    assert segs
    assert segs[0]["start"] == pytest.approx(2.0, abs=0.5)
    assert segs[-1]["end"] == pytest.approx(13.0, abs=0.5)
    for s in segs:  # nothing in the padding
        assert 1.5 <= s["start"] < s["end"] <= 13.5
    assert body["speech_duration"] == pytest.approx(sum(s["end"] - s["start"] for s in segs), abs=0.01)
    assert 6.0 < body["speech_duration"] < 11.0


def test_vad_options_change_segmentation(http, padded_jfk):
    def segments(**opts):
        r = http.post("/v1/audio/vad", files={"file": ("jfk.wav", padded_jfk)}, data={"model": "silero-vad", **opts})
        assert r.status_code == 200, r.text
        return r.json()["segments"]

    merged = segments(min_silence_duration_ms="3000")
    split = segments(min_silence_duration_ms="100")
    assert len(merged) == 1  # JFK's pauses are shorter than 3 s
    assert len(split) > 1
    padded = segments(speech_pad_ms="400", min_silence_duration_ms="3000")
    assert padded[0]["start"] == pytest.approx(merged[0]["start"] - 0.37, abs=0.05)


def test_vad_on_silence_is_empty(http):
    silence = encode_file(np.zeros(16000 * 2, np.float32), 16000, "wav", "pcm_s16le")
    r = http.post("/v1/audio/vad", files={"file": ("s.wav", silence)}, data={"model": "silero-vad"})
    assert r.status_code == 200
    assert r.json() == {"duration": 2.0, "speech_duration": 0.0, "segments": []}
