"""/v1/audio/speech through the official openai SDK against the real server and Piper model."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests.audio_utils import decode, word_recall

SENTENCE = "The quick brown fox jumps over the lazy dog."
PIPER_RATE = 22050


@pytest.fixture(scope="module")
def wav_reference(client) -> float:
    audio = decode(client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format="wav").content)
    return audio.duration


@pytest.mark.parametrize(
    "fmt, rate, codec",
    [("mp3", PIPER_RATE, "mp3"), ("opus", 48000, "opus"), ("aac", PIPER_RATE, "aac"),
     ("flac", PIPER_RATE, "flac"), ("wav", PIPER_RATE, "pcm_s16le")],
)
def test_speech_formats_decode_to_mono_audio(client, wav_reference, fmt, rate, codec):
    resp = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format=fmt)
    audio = decode(resp.content)
    assert audio.codec.startswith(codec)
    assert audio.channels == 1
    assert audio.sample_rate == rate
    assert int(resp.response.headers["x-sample-rate"]) == rate
    assert 1.5 < audio.duration < 6.0  # one short sentence
    # Piper samples phoneme durations with noise, so two syntheses differ by a few percent
    assert audio.duration == pytest.approx(wav_reference, rel=0.12)
    assert np.abs(audio.samples).max() > 0.05  # not silence


def test_speech_pcm_is_raw_int16_at_stated_rate(client, wav_reference):
    resp = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm")
    assert resp.response.headers["content-type"].startswith("audio/pcm")
    rate = int(resp.response.headers["x-sample-rate"])
    assert rate == PIPER_RATE
    samples = np.frombuffer(resp.content, dtype="<i2")
    assert len(resp.content) % 2 == 0
    assert len(samples) / rate == pytest.approx(wav_reference, rel=0.12)  # VITS durations vary a little per run
    assert np.abs(samples).max() > 1000


def test_default_format_is_mp3(client):
    resp = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    assert resp.response.headers["content-type"] == "audio/mpeg"
    assert decode(resp.content).codec.startswith("mp3")


def test_speed_changes_duration(client, wav_reference):
    fast = decode(client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                             response_format="wav", speed=2.0).content)
    slow = decode(client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE,
                                             response_format="wav", speed=0.5).content)
    # Piper scales phoneme durations (length_scale = 1/speed); whole-frame rounding keeps
    # short phonemes from shrinking fully, so 2x speed measures ~0.62x duration, 0.5x ~1.7x.
    assert fast.duration / wav_reference < 0.75
    assert slow.duration / wav_reference > 1.5


@pytest.mark.parametrize("voice", ["alloy", "nova", "cedar", "joe", "JOE"])
def test_openai_and_native_voice_names(client, voice):
    resp = client.audio.speech.create(model="piper-joe", voice=voice, input="Hi.", response_format="wav")
    assert decode(resp.content).duration > 0.2


def test_speech_sse_events(http):
    r = http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello world.",
                                            "response_format": "wav", "stream_format": "sse"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done"
    audio = decode(b"".join(base64.b64decode(e["audio"]) for e in events[:-1]))
    assert audio.duration > 0.5
    usage = events[-1]["usage"]
    assert all(isinstance(usage[k], int) for k in ("input_tokens", "output_tokens", "total_tokens"))
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_tts_to_stt_round_trip(client):
    text = "Please call Stella and ask her to bring these things with her from the store."
    wav = client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content
    heard = client.audio.transcriptions.create(model="whisper-tiny-en", file=("speech.wav", wav))
    assert word_recall(text, heard.text) >= 0.85, heard.text  # tiny.en may slip on a word
