"""The plain-WAV fast path of audio decoding gives what FFmpeg (PyAV) gives, and leaves anything
else to FFmpeg."""

from __future__ import annotations

import numpy as np
import pytest

from speechengine.audio import decode, decode_audio, decode_audio_with_rate
from speechengine.errors import InvalidAudioError
from tests.audio_utils import encode_file
from tests.conftest import FIXTURES


def by_ffmpeg(data: bytes, rate: int | None) -> tuple[np.ndarray, int]:
    original = decode._plain_wav
    decode._plain_wav = lambda *a: None
    try:
        return decode_audio_with_rate(data, rate)
    finally:
        decode._plain_wav = original


@pytest.mark.parametrize("channels,codec", [(1, "pcm_s16le"), (2, "pcm_s16le"), (1, "pcm_f32le"), (2, "pcm_f32le")])
def test_plain_wav_equals_ffmpeg(channels, codec):
    rng = np.random.default_rng(channels)
    audio = (rng.standard_normal((channels, 16000)) * 0.2).clip(-0.9, 0.9).astype(np.float32)
    data = encode_file(audio if channels == 2 else audio[0], 16000, "wav", codec, channels=channels)
    assert decode._plain_wav(data, 16000) is not None  # the fast path took it
    fast, rate = decode_audio_with_rate(data, 16000)
    slow, slow_rate = by_ffmpeg(data, 16000)
    assert rate == slow_rate == 16000 and fast.shape == slow.shape
    assert np.abs(fast - slow).max() < 1e-5


def test_the_stereo_fixture_decodes_alike():
    data = (FIXTURES / "stereo_diarization.wav").read_bytes()
    fast, slow = decode_audio(data, 16000), by_ffmpeg(data, 16000)[0]
    assert np.abs(fast - slow).max() < 1e-5 and len(fast) == 5 * 16000


def test_other_rates_and_formats_go_to_ffmpeg():
    audio = np.zeros(8000, np.float32)
    wav8k = encode_file(audio, 8000, "wav", "pcm_s16le")
    assert decode._plain_wav(wav8k, 16000) is None  # needs resampling
    assert len(decode_audio(wav8k, 16000)) == 16000
    assert decode._plain_wav(wav8k, None) is not None  # at its own rate it is plain
    assert decode._plain_wav((FIXTURES / "jfk.flac").read_bytes(), 16000) is None
    with pytest.raises(InvalidAudioError):
        decode_audio(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(40), 16000)
