"""/v1/audio/transcriptions and /translations through the openai SDK on real speech."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.audio_utils import decode, encode_file, fold
from tests.conftest import FIXTURES, JFK_TEXT

JFK_PHRASE = "ask not what your country can do for you"
JFK_DURATION = 11.0


@pytest.mark.parametrize("model", ["whisper-1", "whisper-base", "whisper-tiny-en"])
def test_json_transcript(client, jfk_bytes, model):
    result = client.audio.transcriptions.create(model=model, file=("jfk.flac", jfk_bytes))
    assert JFK_PHRASE in fold(result.text)
    assert result.usage.type == "duration"
    assert result.usage.seconds == pytest.approx(JFK_DURATION, abs=0.05)


def test_text_format(client, jfk_bytes):
    text = client.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes), response_format="text")
    assert isinstance(text, str)
    assert fold(text) == JFK_TEXT


@pytest.mark.parametrize(
    "container, codec, rate, channels",
    [("wav", "pcm_s16le", 8000, 2), ("mp3", "libmp3lame", 44100, 2), ("ogg", "libopus", 48000, 1),
     ("adts", "aac", 22050, 1), ("flac", "flac", 32000, 2)],
)
def test_any_container_rate_and_channels(client, container, codec, rate, channels):
    src = decode((FIXTURES / "jfk.flac").read_bytes())
    from speechengine.audio import resample

    data = encode_file(resample(src.samples, src.sample_rate, rate), rate, container, codec, channels)
    result = client.audio.transcriptions.create(model="whisper-tiny-en", file=(f"jfk.{container}", data))
    assert JFK_PHRASE in fold(result.text)


def test_second_speaker_fixture(client):
    """The left channel of stereo_diarization.wav, uploaded as its own mono file."""
    stereo = decode((FIXTURES / "stereo_diarization.wav").read_bytes())  # first channel
    data = encode_file(stereo.samples, stereo.sample_rate, "wav", "pcm_s16le")
    result = client.audio.transcriptions.create(model="whisper-base", file=("left.wav", data), language="en")
    assert "confused complaint against the wizard" in fold(result.text)


_SRT_TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def _seconds(m: tuple[str, ...]) -> float:
    h, mi, s, ms = map(int, m)
    return h * 3600 + mi * 60 + s + ms / 1000


def test_srt(client, jfk_bytes):
    srt = client.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes), response_format="srt")
    blocks = [b for b in srt.strip().split("\n\n") if b.strip()]
    assert blocks
    texts = []
    for i, block in enumerate(blocks, start=1):
        lines = block.splitlines()
        assert lines[0] == str(i)
        m = re.fullmatch(f"{_SRT_TIME} --> {_SRT_TIME}", lines[1])
        assert m, lines[1]
        start, end = _seconds(m.groups()[:4]), _seconds(m.groups()[4:])
        assert 0 <= start < end <= JFK_DURATION + 0.01
        texts.append(" ".join(lines[2:]))
    assert JFK_PHRASE in fold(" ".join(texts))


def test_vtt(client, jfk_bytes):
    vtt = client.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes), response_format="vtt")
    assert vtt.startswith("WEBVTT\n")
    cues = re.findall(f"{_SRT_TIME} --> {_SRT_TIME}\n(.+)", vtt)
    assert cues
    for cue in cues:
        start, end = _seconds(cue[:4]), _seconds(cue[4:8])
        assert 0 <= start < end <= JFK_DURATION + 0.01
    assert JFK_PHRASE in fold(" ".join(c[8] for c in cues))


def test_verbose_json_words_and_segments(client, jfk_bytes):
    v = client.audio.transcriptions.create(
        model="whisper-1", file=("jfk.flac", jfk_bytes), response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert v.language == "english"
    assert v.duration == pytest.approx(JFK_DURATION, abs=0.05)
    assert JFK_PHRASE in fold(v.text)
    assert v.segments and [s.id for s in v.segments] == list(range(len(v.segments)))
    for s in v.segments:
        assert 0 <= s.start < s.end <= v.duration
        assert s.tokens and -5 < s.avg_logprob <= 0 and 0 <= s.no_speech_prob <= 1
    words = v.words
    assert fold(" ".join(w.word for w in words)) == fold(v.text)
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    for w in words:
        assert 0 <= w.start <= w.end <= v.duration
        assert w.word == w.word.strip()


def test_verbose_json_default_has_segments_not_words(client, jfk_bytes):
    v = client.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes),
                                           response_format="verbose_json")
    assert v.segments and not v.words


def test_language_and_prompt_and_temperature(client, jfk_bytes):
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("jfk.flac", jfk_bytes), language="en", prompt="A speech by President Kennedy.",
        temperature=0.2,
    )
    assert JFK_PHRASE in fold(result.text)


def test_translation_returns_english(client, jfk_bytes):
    result = client.audio.translations.create(model="whisper-1", file=("jfk.flac", jfk_bytes))
    assert JFK_PHRASE in fold(result.text)
    verbose = client.audio.translations.create(model="whisper-1", file=("jfk.flac", jfk_bytes),
                                               response_format="verbose_json")
    assert verbose.language == "english" and verbose.segments


def test_translation_needs_multilingual_model(client, jfk_bytes):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        client.audio.translations.create(model="whisper-tiny-en", file=("jfk.flac", jfk_bytes))
    assert "English-only" in e.value.message


def test_silence_gives_no_words(client):
    silence = encode_file(np.zeros(16000 * 3, np.float32), 16000, "wav", "pcm_s16le")
    result = client.audio.transcriptions.create(model="whisper-tiny-en", file=("silence.wav", silence))
    assert len(fold(result.text).split()) <= 2  # whisper may emit a filler on pure silence, never a sentence
