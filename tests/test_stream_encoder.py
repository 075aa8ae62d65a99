"""Unit tests of the incremental encoder and the click-free joins (PyAV, no server)."""

from __future__ import annotations

import struct
import threading

import numpy as np
import pytest

from speechengine.audio import encode_audio
from speechengine.audio.joins import fade_edges
from speechengine.audio.stream_encode import StreamEncoder
from tests.audio_utils import decode

RATE = 22050


def tone(seconds: float, freq: float = 440.0, rate: int = RATE, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chunks_of(audio: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    out, start = [], 0
    for n in sizes:
        out.append(audio[start:start + n])
        start += n
    out.append(audio[start:])
    return out


# codecs add at most one frame of priming/padding that a stream without a length header cannot
# trim: mp3 (LAME delay + padding, < 2 frames of 1152) and aac (1024 priming + last frame)
SLACK = {"pcm": 0, "wav": 0, "flac": 0, "opus": 0.002, "mp3": 2 * 1152 / RATE, "aac": 2 * 1024 / RATE}
CODEC = {"wav": "pcm_s16le", "flac": "flac", "opus": "opus", "mp3": "mp3", "aac": "aac"}


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "aac", "flac"])
def test_concatenated_chunks_are_one_file_with_the_whole_signal(fmt):
    audio = np.concatenate([tone(1.0), np.zeros(RATE // 2, np.float32), tone(1.2, 660)])
    enc = StreamEncoder(fmt, RATE)
    parts = [enc.encode(c) for c in chunks_of(audio, [5000, 0, 17, 20000, 3000])]
    parts.append(enc.flush())
    assert sum(1 for p in parts[:-1] if p) >= 3  # bytes leave while the stream is still going
    got = decode(b"".join(parts))
    assert got.codec.startswith(CODEC[fmt]) and got.channels == 1
    assert got.sample_rate == (48000 if fmt == "opus" else RATE)
    expected = len(audio) / RATE
    assert expected - 0.002 <= got.duration <= expected + SLACK[fmt] + 0.002
    # the tail (the last 0.2 s of the second tone) made it out: flush drained the codec
    tail = got.samples[int((expected - 0.3) * got.sample_rate):int((expected - 0.1) * got.sample_rate)]
    assert np.sqrt(np.mean(tail ** 2)) > 0.2


def test_streamed_wav_has_unknown_sizes_and_same_pcm_as_whole_file():
    audio = tone(0.5)
    enc = StreamEncoder("wav", RATE)
    body = enc.encode(audio[:3000]) + enc.encode(audio[3000:]) + enc.flush()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    assert struct.unpack("<I", body[4:8])[0] == 0xFFFFFFFF
    assert body[36:40] == b"data" and struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF
    assert body[44:] == encode_audio(audio, RATE, "wav")[44:]


def test_pcm_stream_is_the_raw_samples():
    audio = tone(0.3)
    enc = StreamEncoder("pcm", RATE)
    assert enc.encode(audio[:100]) + enc.encode(audio[100:]) + enc.flush() == encode_audio(audio, RATE, "pcm")


def test_close_waits_for_a_chunk_in_progress_and_then_refuses_work():
    enc = StreamEncoder("mp3", RATE)
    worker = threading.Thread(target=enc.encode, args=(tone(5.0),))
    worker.start()
    enc.close()  # from another thread while the chunk may be encoding: must not crash
    worker.join()
    enc.close()  # twice is fine
    with pytest.raises(ValueError):
        enc.encode(tone(0.1))


def test_fades_remove_the_step_at_joins_and_keep_length():
    a = tone(0.2) + 0.5  # pieces that end and start far from zero (a DC offset)
    b = tone(0.2, 300) - 0.5
    raw_jump = abs(float(b[0] - a[-1]))
    fa, fb = fade_edges(a, RATE), fade_edges(b, RATE)
    assert len(fa) == len(a) and len(fb) == len(b)
    assert fa[-1] == 0.0 and fb[0] == 0.0
    joined = np.concatenate([fa, fb])
    inner = np.abs(np.diff(joined)).max()
    assert raw_jump > 0.5 and abs(float(fb[0] - fa[-1])) < 1e-6
    assert inner < raw_jump / 4  # the ramps spread the offset over 5 ms: no click anywhere
    n = int(RATE * 0.005)
    np.testing.assert_array_equal(fa[n:-n], a[n:-n])  # only the edges are touched
    assert len(fade_edges(np.ones(3, np.float32), RATE)) == 3  # shorter than two ramps: still fine
