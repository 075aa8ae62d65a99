"""Speech segments from per-frame speech probabilities, frame by frame, for whole files and live streams.

One state machine serves both, so a stream ends with exactly the segments its whole file gets.
A span opens on a frame at or above ``threshold`` and closes after ``min_silence`` frames below
``threshold - 0.15`` (the hysteresis keeps a dip inside a word from splitting it); spans shorter
than ``min_speech`` frames are dropped; each kept span is widened by ``pad_s`` on both sides and
spans whose padding makes them touch are merged.

For streams it also says when each segment is certain: ``speech_started`` once the open span is
long enough that it will be kept, and ``speech_stopped`` once no later span could still merge
into it. Events never need taking back.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechengine.capabilities import SpeechSpan


@dataclass(frozen=True)
class SpeechStarted:
    start: float


@dataclass(frozen=True)
class SpeechStopped:
    start: float
    end: float


SpeechEvent = SpeechStarted | SpeechStopped


class Segmenter:
    def __init__(self, *, frame_samples: int, sample_rate: int, threshold: float, min_silence_ms: float,
                 min_speech_ms: float, pad_ms: float) -> None:
        self.frame_s = frame_samples / sample_rate
        self.threshold = threshold
        self.low = max(threshold - 0.15, 0.01)
        self.min_silence = max(min_silence_ms * sample_rate / 1000 / frame_samples, 1)
        self.min_speech = max(min_speech_ms * sample_rate / 1000 / frame_samples, 1)
        self.pad_s = pad_ms / 1000
        self.frames = 0
        self.audio_s = 0.0  # audio known to exist so far: a segment never ends past it
        self.segments: list[SpeechSpan] = []  # final, their speech_stopped sent
        self._start: int | None = None  # first frame of the open span
        self._silent_since: int | None = None  # first frame of the silence that may close it
        self._active: float | None = None  # padded start of the confirmed segment now in speech
        self._pending: SpeechSpan | None = None  # a segment whose speech may still merge into it

    def push(self, probabilities, audio_s: float) -> list[SpeechEvent]:
        """Take the next frames' probabilities, ``audio_s`` seconds of audio having arrived in all;
        return what became certain."""
        self.audio_s = audio_s
        events: list[SpeechEvent] = []
        for p in probabilities:
            i = self.frames
            self.frames += 1
            closing = False
            if self._start is None:
                if p >= self.threshold:
                    self._start, self._silent_since = i, None
            elif p < self.low:
                if self._silent_since is None:
                    self._silent_since = i
                closing = self.frames - self._silent_since >= self.min_silence
            elif p >= self.threshold:
                self._silent_since = None
            if self._start is not None:
                speech_until = self.frames if self._silent_since is None else self._silent_since
                if self._active is None and speech_until - self._start >= self.min_speech:
                    self._confirm(events)
                if closing:
                    self._close(self._silent_since)
            self._settle(events)
        return events

    def finish(self, duration: float) -> list[SpeechEvent]:
        """End of audio (``duration`` seconds): close what is open and settle every segment."""
        events: list[SpeechEvent] = []
        if self._start is not None:
            end = self._silent_since if self._silent_since is not None else self.frames
            if self._active is None and end - self._start >= self.min_speech:
                self._confirm(events)
            self._close(end)
        if self._pending is not None:
            self._stop(SpeechSpan(self._pending.start, min(duration, self._pending.end)), events)
        return events

    def _confirm(self, events: list[SpeechEvent]) -> None:
        """The open span will be kept: join it to the pending segment or start a new one."""
        start = max(0.0, self._start * self.frame_s - self.pad_s)
        if self._pending is not None and start <= self._pending.end:
            self._active, self._pending = self._pending.start, None
            return
        if self._pending is not None:
            self._stop(self._pending, events)
        self._active = start
        events.append(SpeechStarted(round(start, 3)))

    def _close(self, end_frame: int) -> None:
        if self._active is not None:
            self._pending = SpeechSpan(self._active, end_frame * self.frame_s + self.pad_s)
        self._start = self._silent_since = self._active = None

    def _settle(self, events: list[SpeechEvent]) -> None:
        """Stop the pending segment once no span that could still be kept would reach it."""
        if self._pending is None or self._active is not None:
            return
        earliest = self._start if self._start is not None else self.frames
        if earliest * self.frame_s - self.pad_s > self._pending.end and self._pending.end <= self.audio_s:
            self._stop(self._pending, events)

    def _stop(self, span: SpeechSpan, events: list[SpeechEvent]) -> None:
        self._pending = None
        final = SpeechSpan(round(span.start, 3), round(span.end, 3))
        self.segments.append(final)
        events.append(SpeechStopped(final.start, final.end))
