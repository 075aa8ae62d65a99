"""Incremental encoding for streamed responses: float32 chunks in, the bytes produced so far out.

Everything one StreamEncoder returns, concatenated, is one valid file of its format. pcm is raw
16-bit; wav is a header with 0xFFFFFFFF RIFF and data sizes (the length is unknown while
streaming; OpenAI sends the same) followed by PCM; mp3, opus, aac and flac are muxed by PyAV into
a write-only sink that is drained after every chunk. The sink cannot seek, so header fields that
need the total length (the FLAC STREAMINFO sample count, the MP3 Xing/LAME tag) stay unset and
decoders read to the end of the stream instead. ``flush()`` drains the codec and writes the
trailer, so no tail is lost.

One chunk at a time: calls are serialized by a lock, so ``close()`` from another thread waits
for a chunk being encoded instead of freeing the codec under it.
"""

from __future__ import annotations

import threading

import av
import numpy as np

from speechengine.audio.encode import CODECS, output_rate, to_pcm16, wav_header

# Ogg muxes pages of about one second by default; a short page duration lets each sentence's
# audio leave as soon as it is encoded (about 2 % more bytes for page headers).
_CONTAINER_OPTIONS = {"ogg": {"page_duration": "100000"}}


class _Sink:
    """Write-only file object for PyAV: no seek/tell, so FFmpeg treats the output as a stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data) -> int:
        self._buf += data
        return len(data)

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class StreamEncoder:
    """Encode one streamed response in ``fmt`` from mono float32 chunks at ``sample_rate``."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.format = fmt
        self.sample_rate = sample_rate
        self.output_rate = output_rate(fmt, sample_rate)
        self._lock = threading.Lock()
        self._closed = False
        self._header_sent = False
        self._container = None
        self._stream = None
        self._sink = _Sink()
        if fmt not in ("pcm", "wav"):
            container_fmt, codec, bit_rate = CODECS[fmt]
            self._container = av.open(self._sink, mode="w", format=container_fmt,
                                      options=_CONTAINER_OPTIONS.get(container_fmt, {}))
            self._stream = self._container.add_stream(codec, rate=self.output_rate, layout="mono")
            if bit_rate:
                self._stream.bit_rate = bit_rate

    def encode(self, audio: np.ndarray) -> bytes:
        """Add a chunk; returns the bytes that are ready (possibly none: codecs work in frames)."""
        with self._lock:
            self._check_open()
            if self._container is None:
                return self._raw(audio)
            if audio.size == 0:
                return b""
            frame = av.AudioFrame.from_ndarray(
                np.clip(audio, -1.0, 1.0).astype(np.float32).reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = self.sample_rate  # the codec context resamples (opus) and reframes
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            return self._sink.drain()

    def flush(self) -> bytes:
        """End the stream: the codec's buffered tail and the container trailer. Closes the encoder."""
        with self._lock:
            self._check_open()
            self._closed = True
            if self._container is None:
                return self._raw(np.zeros(0, np.float32))
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            return self._sink.drain()

    def close(self) -> None:
        """Abandon the stream (the client went away): release the codec. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._container is not None:
                container, self._container = self._container, None
                try:
                    container.close()
                except (av.FFmpegError, ValueError):  # an unfinished stream may fail to write its trailer
                    pass

    def _raw(self, audio: np.ndarray) -> bytes:
        pcm = to_pcm16(audio)
        if self.format == "wav" and not self._header_sent:
            self._header_sent = True
            return wav_header(self.sample_rate, None) + pcm
        return pcm

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the stream encoder is closed")
