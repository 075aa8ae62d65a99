"""A live VAD stream: audio arrives in pieces of any length, speech events leave as soon as certain.

The stream keeps everything that is its own (audio short of a whole frame, the model's recurrent
state, the segmenter); the model's worker keeps nothing. Each time whole frames are ready they go
through the model's scheduler as one chunk that carries the state in, and the result carries the
new state out, so chunks of many streams share a batch on any executor (threads, processes, Ray).
One chunk per stream is in the scheduler at a time: the next needs the state the previous returns.

Fed the same audio, a stream ends with the segments POST /v1/audio/vad gives the whole file:
the model sees the same frames with the same context and state, the last partial frame is padded
with zeros in both, and both segment with speech_segments.Segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechengine.capabilities import Capability, VADChunkInput, VADChunkOutput, VADOutput
from speechengine.engine.deployment import Deployment
from speechengine.scheduler import RequestTrace
from speechengine.speech_segments import Segmenter, SpeechEvent

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class VADStreamOptions:
    threshold: float = 0.5
    min_silence_duration_ms: int = 500
    speech_pad_ms: int = 30
    min_speech_duration_ms: int = 0


class VADStream:
    """Use as ``async with``: leaving it (finished, failed or cancelled) releases the model."""

    def __init__(self, dep: Deployment, options: VADStreamOptions) -> None:
        self.dep = dep
        self.options = options
        self.trace = RequestTrace()
        self.samples = 0
        self._frame = 0
        self._pending = np.zeros(0, np.float32)
        self._state: tuple[np.ndarray, ...] | None = None
        self._segmenter: Segmenter | None = None
        self._chunks = 0
        self._done = False
        self._open = False

    async def __aenter__(self) -> "VADStream":
        info = await self.dep.open_chunks(Capability.VAD)
        self._open = True
        self._frame = info.frame_samples
        o = self.options
        self._segmenter = Segmenter(frame_samples=self._frame, sample_rate=SAMPLE_RATE, threshold=o.threshold,
                                    min_silence_ms=o.min_silence_duration_ms, min_speech_ms=o.min_speech_duration_ms,
                                    pad_ms=o.speech_pad_ms)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._open:
            self._open = False
            self.dep.close_chunks(Capability.VAD, self.trace if self._done else None, self.samples / SAMPLE_RATE)

    async def feed(self, audio: np.ndarray) -> list[SpeechEvent]:
        """Take the next mono float32 16 kHz samples; return the events they made certain."""
        self.samples += len(audio)
        self._pending = np.concatenate([self._pending, audio]) if len(self._pending) else audio
        whole = len(self._pending) // self._frame * self._frame
        if whole == 0:
            return []
        chunk, self._pending = self._pending[:whole], self._pending[whole:]
        return self._segmenter.push(await self._run(chunk), self.samples / SAMPLE_RATE)

    async def finish(self) -> tuple[list[SpeechEvent], VADOutput]:
        """End of audio: the last partial frame (zero-padded), the last events and every segment."""
        duration = self.samples / SAMPLE_RATE
        events: list[SpeechEvent] = []
        if len(self._pending):
            chunk = np.pad(self._pending, (0, self._frame - len(self._pending)))
            self._pending = np.zeros(0, np.float32)
            events += self._segmenter.push(await self._run(chunk), duration)
        events += self._segmenter.finish(duration)
        self._done = True
        return events, VADOutput(duration=duration, segments=tuple(self._segmenter.segments))

    async def _run(self, chunk: np.ndarray) -> np.ndarray:
        out: VADChunkOutput = await self.dep.submit_chunk(
            Capability.VAD, VADChunkInput(audio=chunk, state=self._state), self.trace, first=self._chunks == 0)
        self._chunks += 1
        self._state = out.state
        return out.probabilities
