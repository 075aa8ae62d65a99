"""faster-whisper (CTranslate2 Whisper): speech-to-text and, for multilingual models, translation.

Batching: items run one after another on a shared CTranslate2 model (``native_batching`` is
False); parallelism comes from several workers, since CTranslate2 serves concurrent calls.
"""

from __future__ import annotations

from typing import ClassVar, Iterator

from pydantic import Field

from speechengine.capabilities import Capability, Segment, STTInput, STTOutput, Word
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo

# OpenAI: temperature 0 means "start greedy, raise the temperature when decoding fails".
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class FasterWhisperOptions(FamilyOptions):
    compute_type: str | None = Field(None, description="CTranslate2 compute type; default from the platform")
    cpu_threads: int = Field(0, ge=0, description="intra-op threads; 0 = the platform's thread budget")
    num_workers: int = Field(1, ge=1, le=16, description="CTranslate2 calls that may run in parallel; "
                             "match the model's `workers` so parallel batches really run at once")
    beam_size: int = Field(5, ge=1, le=16)
    vad_filter: bool = Field(False, description="skip non-speech with Silero before decoding")
    condition_on_previous_text: bool = True


class FasterWhisper(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STT})
    Options: ClassVar[type[FamilyOptions]] = FasterWhisperOptions
    options: FasterWhisperOptions

    def load(self) -> None:
        from faster_whisper import WhisperModel

        o = self.options
        self.model = WhisperModel(
            str(self.weights),
            device=self.platform.ct2_device,
            compute_type=o.compute_type or self.platform.default_compute_type,
            cpu_threads=o.cpu_threads or self.platform.cpu_threads,
            num_workers=o.num_workers,
        )

    def info(self) -> ModelInfo:
        multilingual = self.model.model.is_multilingual
        languages = tuple(self.model.supported_languages) if multilingual else ("en",)
        tasks = ("transcribe", "translate") if multilingual else ("transcribe",)
        return ModelInfo(languages=languages, tasks=tasks, sample_rate=16000)

    def validate(self, capability: Capability, item: STTInput) -> None:
        info = self.info()
        if item.task not in info.tasks:
            raise InvalidRequestError(
                "this model is English-only and cannot translate; use a multilingual model", param="model"
            )
        if item.language is not None and item.language not in info.languages:
            raise InvalidRequestError(
                f"language {item.language!r} is not supported by this model", param="language"
            )

    def transcribe_batch(self, items: list[STTInput]) -> list[STTOutput]:
        return [self._transcribe(item) for item in items]

    def transcribe_stream(self, item: STTInput) -> Iterator[Segment]:
        """Segments as they are decoded (faster-whisper decodes lazily, one 30 s window at a time)."""
        segments, _info = self._decode(item)
        return segments

    def _transcribe(self, item: STTInput) -> STTOutput:
        segments, info = self._decode(item)
        out = tuple(segments)
        text = "".join(s.text for s in out).strip()
        return STTOutput(text=text, language=info.language, duration=item.duration, segments=out)

    def _decode(self, item: STTInput) -> tuple[Iterator[Segment], object]:
        temperature = _FALLBACK_TEMPERATURES if item.temperature == 0 else (item.temperature,)
        language = item.language
        if language is None and not self.model.model.is_multilingual:
            language = "en"
        segments, info = self.model.transcribe(
            item.audio,
            language=language,
            task=item.task,
            beam_size=self.options.beam_size,
            temperature=list(temperature),
            initial_prompt=item.prompt or None,
            word_timestamps=item.word_timestamps,
            vad_filter=self.options.vad_filter,
            condition_on_previous_text=self.options.condition_on_previous_text,
        )
        return _typed_segments(segments), info


def _typed_segments(segments) -> Iterator[Segment]:
    """faster-whisper's lazy segments as our Segments; decoding happens while iterating."""
    for index, s in enumerate(segments):
        yield Segment(
            id=index,  # OpenAI numbers segments from 0
            seek=s.seek,
            start=s.start,
            end=s.end,
            text=s.text,
            tokens=tuple(s.tokens),
            temperature=s.temperature if s.temperature is not None else 0.0,
            avg_logprob=s.avg_logprob,
            compression_ratio=s.compression_ratio,
            no_speech_prob=s.no_speech_prob,
            words=tuple(Word(w.word, w.start, w.end, w.probability) for w in (s.words or ())),
        )
