"""Piper (VITS in ONNX Runtime) text-to-speech. piper-tts is GPL-3.0 (it links espeak-ng).

``speed`` maps to Piper's length scale. Items of a batch run one after another on one ONNX
session (``native_batching`` False: padded batches measured slower than sequential on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import queue
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, TTSInput, TTSOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo


class PiperOptions(FamilyOptions):
    noise_scale: float | None = Field(None, ge=0, description="default: the voice's own config")
    noise_w_scale: float | None = Field(None, ge=0)
    sentence_silence_s: float = Field(0.0, ge=0, le=5, description="silence inserted between sentences")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads; 0 = the platform's thread budget")
    sessions: int = Field(1, ge=1, le=16, description="ONNX Runtime sessions that synthesize in parallel, one per "
                          "concurrent batch; match the model's `workers`")
    sessions: int = Field(1, ge=1, le=16, description="ONNX sessions that synthesize in parallel (one per "
                          "concurrent batch); match the model's `workers`")


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
        import onnxruntime
        from piper import PiperVoice

        model_path, config_path = _find_voice_files(self.weights)
        voice = PiperVoice.load(model_path, config_path=config_path)
        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads or self.platform.cpu_threads
        so.inter_op_num_threads = 1
        # Our own sessions, with the platform's providers and thread budget: one per batch that may
        # run at once (one session serves one call at a time best; two single-thread sessions
        # measured ~1.2x one two-thread session on 2 cores).
        self._voices: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(self.options.sessions):
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=so, providers=list(self.platform.ort_providers))
            self._voices.put(dataclasses.replace(voice, session=session))
        self.voice = voice  # config only: each synthesis borrows a voice (and its session) from _voices
        # A single-speaker voice is named by its dataset ("joe"); multi-speaker ones by their speakers.
        dataset = json.loads(config_path.read_text()).get("dataset") or model_path.stem
        self._speakers: dict[str, int] = dict(voice.config.speaker_id_map or {}) or {dataset: 0}
        self.synthesize_batch([TTSInput(text="Warm up.", voice=next(iter(self._speakers)))])

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
        return [self._synthesize(item) for item in items]

    def _synthesize(self, item: TTSInput) -> TTSOutput:
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
        voice = self._voices.get()
        try:
            for chunk in voice.synthesize(item.text, syn_config=cfg):
                if pieces and len(gap):
                    pieces.append(gap)
                pieces.append(chunk.audio_float_array.astype(np.float32, copy=False))
        finally:
            self._voices.put(voice)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return TTSOutput(audio=audio, sample_rate=rate)
