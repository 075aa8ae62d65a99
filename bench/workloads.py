"""What the benchmark sends: real speech clips for STT and VAD, sentences for TTS, and the client
calls for each system (ours and the peers), each returning the audio seconds it handled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from speechengine.audio import decode_audio, encode_audio

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A speech server is judged first by how soon the sound starts.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her Wednesday at the train station.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
    "The rainbow is a division of white light into many beautiful colors.",
]


@dataclass
class Clip:
    name: str
    wav: bytes  # 16 kHz mono wav, what every system receives
    seconds: float


def speech_clips() -> list[Clip]:
    """jfk.flac (11 s) and each channel of stereo_diarization.wav (5 s): three real speakers."""
    import soundfile

    clips = []
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), 16000)
    clips.append(Clip("jfk", encode_audio(jfk, 16000, "wav"), len(jfk) / 16000))
    stereo, rate = soundfile.read(str(FIXTURES / "stereo_diarization.wav"), dtype="float32")
    assert rate == 16000 and stereo.shape[1] == 2
    for i, name in enumerate(("left", "right")):
        ch = np.ascontiguousarray(stereo[:, i])
        clips.append(Clip(name, encode_audio(ch, 16000, "wav"), len(ch) / 16000))
    return clips


def long_clip() -> Clip:
    """60 s of real speech (the three speakers, repeated, with 1-s gaps): two of Whisper's windows."""
    import soundfile

    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), 16000)
    stereo, _ = soundfile.read(str(FIXTURES / "stereo_diarization.wav"), dtype="float32")
    left, right = np.ascontiguousarray(stereo[:, 0]), np.ascontiguousarray(stereo[:, 1])
    gap = np.zeros(16000, np.float32)
    x = np.concatenate([jfk, gap, left, gap, jfk, gap, right, gap, jfk, gap, jfk, gap, left])[:60 * 16000]
    return Clip("long", encode_audio(x, 16000, "wav"), len(x) / 16000)


def short_clips() -> list[Clip]:
    """4-s pieces of the fixtures, for the short-beside-long measurement."""
    clips = []
    for clip in speech_clips():
        audio = decode_audio(clip.wav, 16000)
        clips.append(Clip(clip.name + "-4s", encode_audio(audio[:4 * 16000], 16000, "wav"), 4.0))
    return clips


def vad_clip() -> Clip:
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), 16000)
    pad = np.zeros(32000, np.float32)
    x = np.concatenate([pad, jfk, pad, jfk, pad])
    return Clip("jfk-padded", encode_audio(x, 16000, "wav"), len(x) / 16000)


def wav_seconds(data: bytes) -> float:
    """Duration of a PCM wav from its bytes (a streamed wav's header sizes are 0xFFFFFFFF)."""
    import struct

    channels, rate = struct.unpack("<HI", data[22:28])
    bits = struct.unpack("<H", data[34:36])[0]
    start = data.index(b"data", 12) + 8
    return (len(data) - start) / (rate * channels * bits // 8)


@dataclass
class Sample:
    latency: float
    ttfb: float
    audio_s: float


async def _timed_post(client: httpx.AsyncClient, url: str, **kwargs) -> tuple[bytes, float, float]:
    t0 = time.perf_counter()
    async with client.stream("POST", url, **kwargs) as r:
        ttfb = None
        chunks = []
        async for chunk in r.aiter_bytes():
            if ttfb is None:
                ttfb = time.perf_counter() - t0
            chunks.append(chunk)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code} {b''.join(chunks)[:300]!r}")
    return b"".join(chunks), time.perf_counter() - t0, ttfb or 0.0


async def stt_ours(client, base, clip: Clip, model: str) -> Sample:
    _, lat, ttfb = await _timed_post(client, base + "/v1/audio/transcriptions",
                                     files={"file": ("a.wav", clip.wav)}, data={"model": model})
    return Sample(lat, ttfb, clip.seconds)


async def stt_fws(client, base, clip: Clip, model: str) -> Sample:
    _, lat, ttfb = await _timed_post(client, base + "/v1/audio/transcriptions",
                                     files={"file": ("a.wav", clip.wav)}, data={"model": "whisper-1"})
    return Sample(lat, ttfb, clip.seconds)


async def tts_ours(client, base, text: str, model: str) -> Sample:
    body, lat, ttfb = await _timed_post(client, base + "/v1/audio/speech",
                                        json={"model": model, "voice": "alloy", "input": text,
                                              "response_format": "wav"})
    return Sample(lat, ttfb, wav_seconds(body))


async def tts_piper_http(client, base, text: str, model: str) -> Sample:
    body, lat, ttfb = await _timed_post(client, base + "/synthesize", json={"text": text})
    return Sample(lat, ttfb, wav_seconds(body))


async def embed_ours(client, base, clip: Clip, model: str) -> Sample:
    _, lat, ttfb = await _timed_post(client, base + "/v1/audio/embeddings", files={"file": ("a.wav", clip.wav)},
                                     data={"model": model})
    return Sample(lat, ttfb, clip.seconds)


async def vad_ours(client, base, clip: Clip, model: str) -> Sample:
    _, lat, ttfb = await _timed_post(client, base + "/v1/audio/vad", files={"file": ("a.wav", clip.wav)},
                                     data={"model": model})
    return Sample(lat, ttfb, clip.seconds)
