"""Encoding synthesized audio into OpenAI's response formats: mp3, opus, aac, flac, wav, pcm.

pcm is raw 16-bit little-endian mono at the model's rate; wav is the same behind a RIFF header;
the compressed formats go through PyAV. Opus only runs at 8/12/16/24/48 kHz, so other rates are
resampled to 48 kHz for it.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np

from speechengine.audio.decode import resample

AUDIO_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")

_MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

# format -> (container, codec, bit rate or None)
CODECS = {
    "mp3": ("mp3", "libmp3lame", 64_000),
    "opus": ("ogg", "libopus", 48_000),
    "aac": ("adts", "aac", 64_000),
    "flac": ("flac", "flac", None),
}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def media_type(fmt: str) -> str:
    return _MEDIA_TYPES[fmt]


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """A 44-byte PCM16 mono header; ``data_bytes=None`` writes 0xFFFFFFFF sizes for streaming."""
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    data = 0xFFFFFFFF if data_bytes is None else data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data)
    )


def output_rate(fmt: str, sample_rate: int) -> int:
    """The sample rate a response in ``fmt`` will have for audio made at ``sample_rate``."""
    if fmt == "opus" and sample_rate not in _OPUS_RATES:
        return 48000
    return sample_rate


def encode_audio(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode a whole mono float32 signal into one file of format ``fmt``."""
    if fmt == "pcm":
        return to_pcm16(audio)
    if fmt == "wav":
        pcm = to_pcm16(audio)
        return wav_header(sample_rate, len(pcm)) + pcm
    container_fmt, codec, bit_rate = CODECS[fmt]
    rate = output_rate(fmt, sample_rate)
    audio = resample(audio, sample_rate, rate)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            np.clip(audio, -1.0, 1.0).astype(np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
