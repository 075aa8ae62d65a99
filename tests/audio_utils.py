"""Test helpers: decode responses with PyAV, make audio files, and fold text for comparison."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import av
import numpy as np


@dataclass
class Decoded:
    samples: np.ndarray  # float32, first channel
    sample_rate: int
    channels: int
    codec: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(data: bytes) -> Decoded:
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        chunks, rate, channels, codec = [], stream.rate, stream.channels, stream.codec_context.name
        to_float = av.AudioResampler(format="fltp")  # planar float in [-1, 1], channels kept
        for frame in c.decode(stream):
            for out in to_float.resample(frame):
                chunks.append(out.to_ndarray()[0].astype(np.float32))
    return Decoded(np.concatenate(chunks), rate, channels, codec)


def encode_file(audio: np.ndarray, rate: int, container: str, codec: str, channels: int = 1) -> bytes:
    """Write float32 mono audio as a file (optionally duplicated to several channels)."""
    buf = io.BytesIO()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        data = np.repeat(audio.reshape(1, -1), channels, axis=0).T.reshape(1, -1).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="flt", layout=layout)
        frame.sample_rate = rate
        for p in stream.encode(frame):
            out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return buf.getvalue()


def fold(text: str) -> str:
    """Lower case, no punctuation, single spaces: how transcripts are compared."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def word_recall(expected: str, heard: str) -> float:
    """Share of the expected words found, in order, in what was heard (1.0 = every word)."""
    import difflib

    exp, got = fold(expected).split(), fold(heard).split()
    matcher = difflib.SequenceMatcher(a=exp, b=got, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / max(len(exp), 1)
