"""Piper (VITS in ONNX Runtime) text-to-speech. piper-tts is GPL-3.0 (it links espeak-ng).

``speed`` maps to Piper's length scale. Items run one per ONNX session (``native_batching``
False: padded batches measured slower than sequential on CPU): a lone item on the wide session,
the items of a batch in parallel on narrow ones (see models/sessions.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, TTSInput, TTSOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo
from speechengine.models.sessions import SessionOptions, SessionPlan, SessionSet, ort_session

if TYPE_CHECKING:
    from piper import PiperVoice


class PiperOptions(SessionOptions):
    noise_scale: float | None = Field(None, ge=0, description="default: the voice's own config")
    noise_w_scale: float | None = Field(None, ge=0)
    sentence_silence_s: float = Field(0.0, ge=0, le=5, description="silence inserted between sentences")


def _find_voice_files(weights: Path) -> tuple[Path, Path]:
    if weights.is_file():
        model = weights
    else:
        candidates = sorted(weights.glob("*.onnx"))
        if len(candidates) != 1:
            raise FileNotFoundError(f"expected one .onnx voice in {weights}, found {len(candidates)}")
        model = candidates[0]
    config = model.with_name(model.name + ".json")
    if not config.exists():
        raise FileNotFoundError(f"voice config {config} is missing")
    return model, config


class Piper(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TTS})
    Options: ClassVar[type[FamilyOptions]] = PiperOptions
    options: PiperOptions

    def load(self) -> None:
        from piper import PiperVoice
        from piper.config import PiperConfig

        model_path, config_path = _find_voice_files(self.weights)
        config_dict = json.loads(config_path.read_text())
        config = PiperConfig.from_dict(config_dict)

        def make(threads: int) -> PiperVoice:
            # Our own sessions (PiperVoice.load would open one more, with ONNX Runtime's defaults).
            return PiperVoice(session=ort_session(str(model_path), threads, self.platform), config=config)

        plan = SessionPlan.of(self.options, self.platform)
        self.sessions = SessionSet(plan, make, "piper")
        self.threads = plan.threads
        self.voice = self.sessions.wide  # for its config; synthesis picks a session per item
        # A single-speaker voice is named by its dataset ("joe"); multi-speaker ones by their speakers.
        dataset = config_dict.get("dataset") or model_path.stem
        self._speakers: dict[str, int] = dict(config.speaker_id_map or {}) or {dataset: 0}
        warm_up = TTSInput(text="Warm up.", voice=next(iter(self._speakers)))
        for voice in self.sessions.runners():
            self._synthesize(voice, warm_up)

    def info(self) -> ModelInfo:
        names = tuple(self._speakers)
        return ModelInfo(voices=names, default_voice=names[0], sample_rate=self.voice.config.sample_rate,
                         languages=(self.voice.config.espeak_voice,))

    def validate(self, capability: Capability, item: TTSInput) -> None:
        if item.voice not in self._speakers:
            raise InvalidRequestError(
                f"voice {item.voice!r} is not a voice of this model; voices: {', '.join(self._speakers)}",
                param="voice",
            )

    def synthesize_batch(self, items: list[TTSInput]) -> list[TTSOutput]:
        return self.sessions.map(self._synthesize, items, size=lambda item: len(item.text))

    def close(self) -> None:
        self.sessions.close()

    def _synthesize(self, voice: PiperVoice, item: TTSInput) -> TTSOutput:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(
            speaker_id=self._speakers[item.voice] if len(self._speakers) > 1 else None,
            length_scale=self.voice.config.length_scale / item.speed,
            noise_scale=self.options.noise_scale,
            noise_w_scale=self.options.noise_w_scale,
        )
        rate = self.voice.config.sample_rate
        gap = np.zeros(int(self.options.sentence_silence_s * rate), np.float32)
        pieces: list[np.ndarray] = []
        for chunk in voice.synthesize(item.text, syn_config=cfg):
            if pieces and len(gap):
                pieces.append(gap)
            pieces.append(chunk.audio_float_array.astype(np.float32, copy=False))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return TTSOutput(audio=audio, sample_rate=rate)
