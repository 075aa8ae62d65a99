"""Silero VAD v6 (ONNX, the copy faster-whisper ships): speech segments of an audio file.

Speech probabilities come from the ONNX model per 32 ms window; the segmentation on top
(hysteresis, minimum silence and speech, padding) is ours so that it honours the configured
weights and request options. Whole files run as one call, so a batch loops over its items.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from speechengine.capabilities import Capability, SpeechSpan, VADInput, VADOutput
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo

SAMPLE_RATE = 16000
WINDOW = 512  # samples per probability (32 ms at 16 kHz)


class SileroVAD(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.VAD})
    Options: ClassVar[type[FamilyOptions]] = FamilyOptions

    def load(self) -> None:
        from faster_whisper.vad import SileroVADModel

        path = self.weights
        if path.is_dir():
            path = next(iter(sorted(path.glob("silero_vad*.onnx"))), path / "silero_vad_v6.onnx")
        self.model = SileroVADModel(str(path))
        self.detect_batch([VADInput(audio=np.zeros(SAMPLE_RATE, np.float32))])

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=SAMPLE_RATE)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        padded = np.pad(audio, (0, (-len(audio)) % WINDOW or 0))
        if len(padded) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(self.model(padded)).reshape(-1)

    def detect_batch(self, items: list[VADInput]) -> list[VADOutput]:
        return [self._detect(item) for item in items]

    def _detect(self, item: VADInput) -> VADOutput:
        probs = self.probabilities(item.audio)
        spans = speech_spans(
            probs,
            threshold=item.threshold,
            min_silence_windows=item.min_silence_duration_ms * SAMPLE_RATE / 1000 / WINDOW,
            min_speech_windows=item.min_speech_duration_ms * SAMPLE_RATE / 1000 / WINDOW,
        )
        duration = len(item.audio) / SAMPLE_RATE
        pad = item.speech_pad_ms / 1000
        win = WINDOW / SAMPLE_RATE
        out: list[SpeechSpan] = []
        for a, b in spans:
            start, end = max(0.0, a * win - pad), min(duration, b * win + pad)
            if out and start <= out[-1].end:  # padding made two spans touch: merge them
                out[-1] = SpeechSpan(out[-1].start, end)
            else:
                out.append(SpeechSpan(start, end))
        return VADOutput(duration=duration, segments=tuple(SpeechSpan(round(s.start, 3), round(s.end, 3)) for s in out))


def speech_spans(
    probs: np.ndarray, *, threshold: float, min_silence_windows: float, min_speech_windows: float
) -> list[tuple[int, int]]:
    """Window-index spans of speech: enter above ``threshold``, leave after enough windows below
    ``threshold - 0.15`` (hysteresis keeps a dip inside a word from splitting it)."""
    low = max(threshold - 0.15, 0.01)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    silent_since: int | None = None
    for i, p in enumerate(probs):
        if start is None:
            if p >= threshold:
                start, silent_since = i, None
            continue
        if p < low:
            if silent_since is None:
                silent_since = i
            if i + 1 - silent_since >= max(min_silence_windows, 1):
                spans.append((start, silent_since))
                start, silent_since = None, None
        elif p >= threshold:
            silent_since = None
    if start is not None:
        spans.append((start, silent_since if silent_since is not None else len(probs)))
    return [(a, b) for a, b in spans if b - a >= max(min_speech_windows, 1)]
