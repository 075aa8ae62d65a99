"""Decoding uploads with PyAV (FFmpeg): any container and codec, any rate and channel count, to
mono float32 at the rate a model wants. Undecodable or empty input is an InvalidAudioError (400).
"""

from __future__ import annotations

import io

import av
import numpy as np

from speechengine.errors import InvalidAudioError


def _collect(frames, resampler: av.AudioResampler) -> np.ndarray:
    chunks: list[np.ndarray] = []
    for frame in frames:
        frame.pts = None  # timestamps of odd files must not confuse the resampler
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def decode_audio(data: bytes, sample_rate: int = 16000, *, param: str = "file") -> np.ndarray:
    """Decode a whole file to mono float32 at ``sample_rate``."""
    return _decode(data, sample_rate, param)[0]


def decode_audio_with_rate(data: bytes, sample_rate: int | None = None, *, param: str = "file") -> tuple[np.ndarray, int]:
    """Decode a whole file to mono float32 at ``sample_rate`` (None: the file's own rate) and return
    it with the file's own sample rate, for endpoints that answer at the rate they were given."""
    return _decode(data, sample_rate, param)


def _decode(data: bytes, sample_rate: int | None, param: str) -> tuple[np.ndarray, int]:
    if not data:
        raise InvalidAudioError("the uploaded audio file is empty", param=param)
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidAudioError("the uploaded file has no audio stream", param=param)
            stream = container.streams.audio[0]
            source_rate = stream.rate or stream.codec_context.sample_rate
            if not source_rate:
                raise InvalidAudioError("the uploaded file does not state its sample rate", param=param)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate or source_rate)
            audio = _collect(container.decode(stream), resampler)
    except InvalidAudioError:
        raise
    except (av.FFmpegError, ValueError, EOFError) as exc:
        raise InvalidAudioError(f"the uploaded file could not be decoded as audio: {exc}", param=param) from None
    if audio.size == 0:
        raise InvalidAudioError("the uploaded file contains no audio samples", param=param)
    return audio, int(source_rate)


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample mono float32 audio (FFmpeg's swresample)."""
    if src_rate == dst_rate or audio.size == 0:
        return audio
    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = src_rate
    return _collect([frame], av.AudioResampler(format="flt", layout="mono", rate=dst_rate))
