"""Kokoro (second TTS family): formats decode to mono 24 kHz, and Whisper recovers the words."""

from __future__ import annotations

import pytest

from tests.audio_utils import decode, fold

TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus", "aac"])
def test_kokoro_formats_are_mono_24k(client, fmt):
    r = client.audio.speech.with_raw_response.create(model="kokoro-en", voice="jf_alpha", input=TEXT,
                                                     response_format=fmt)
    assert r.headers["x-sample-rate"] == "24000"
    out = decode(r.content)
    assert out.channels == 1
    assert out.sample_rate == (48000 if fmt == "opus" else 24000)  # Opus decoders always output 48 kHz
    assert 1.0 < out.duration < 8.0
    assert abs(out.samples).max() > 0.05


def test_kokoro_round_trip_recovers_words(client):
    audio = client.audio.speech.create(model="kokoro-en", voice="alloy", input=TEXT, response_format="wav").content
    text = fold(client.audio.transcriptions.create(model="whisper-tiny-en", file=("k.wav", audio)).text)
    assert text == fold(TEXT)


def test_kokoro_voices_listed(http):
    model = next(m for m in http.get("/v1/models").json()["data"] if m["id"] == "kokoro-en")
    assert set(model["voices"]) == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert model["sample_rate"] == 24000
    listed = {v["id"] for v in http.get("/v1/audio/voices").json()["data"] if v.get("model") == "kokoro-en"}
    assert listed == set(model["voices"])
