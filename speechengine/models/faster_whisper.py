"""faster-whisper (CTranslate2 Whisper): speech-to-text and, for multilingual models, translation.

Decoding runs window by window (Whisper sees 30 s at a time), and each window is its own
scheduler unit: ``stepper`` (engine side, no model) keeps one request's state between windows,
``transcribe_steps`` (worker side) decodes the next window of several requests at once. So a
long file advances one window per turn, interleaved with newer requests, and the windows of
different requests share one batched ``generate`` call. Encoding runs window by window on CPU
(batching the encoder gains nothing there) and as one batch on a GPU. The decoding rules are
faster-whisper's own (``WhisperModel.generate_segments``): beam search at temperature 0 with
fallback to sampling when a window's text is too repetitive or too improbable, the previous
text as the prompt, the no-speech skip and word timestamps; a batch's windows give the same
tokens as the same windows decoded one by one (tests/test_whisper_batching.py).

CTranslate2 needs the start-of-transcript token at one position in a batch, so only windows
whose prompts are equally long share a batch (``WhisperStep.batch_key``): first windows without
a prompt always can, and later windows usually can, since the previous text fills the prompt's
223 tokens after about a minute of speech.

Short windows (``short_windows``, on by default): a window that holds the rest of a request in
less than 30 s (a short request, or a long one's last window) is padded to its audio plus 2 s,
rounded up in 5-s steps from 10 s, instead of to 30 s. The encoder's cost follows the window, so
short requests decode 2.5-3.5x faster; measured on our speech fixtures and synthetic sentences,
the word error rate stays within 0.02 of the 30-s path's and no transcript loops
(tests/test_whisper_batching.py). Windows of different lengths never share a batch.

With ``vad_filter`` a request runs whole in faster-whisper's ``transcribe`` instead (one
scheduler unit, items of a batch in turn), which drops non-speech before decoding.
"""

from __future__ import annotations

import threading
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import ClassVar, Iterator

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, Segment, STTInput, STTOutput, Word
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo

# OpenAI: temperature 0 means "start greedy, raise the temperature when decoding fails".
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# faster-whisper's transcribe() defaults, which the stepped path keeps.
_COMPRESSION_RATIO_THRESHOLD = 2.4
_LOG_PROB_THRESHOLD = -1.0
_NO_SPEECH_THRESHOLD = 0.6
_PROMPT_RESET_ON_TEMPERATURE = 0.5
_BEST_OF = 5
_MAX_LENGTH = 448
_MAX_PROMPT = _MAX_LENGTH // 2 - 1  # previous-text tokens a prompt keeps
_WINDOW_FRAMES = 3000  # 30 s of 10 ms feature frames
_FEATURE_CACHE_BYTES = 256 << 20  # features a worker keeps between windows (80 mels: ~19 MB per 10 min)
_SHORT_MARGIN, _SHORT_STEP, _SHORT_MIN = 200, 500, 1000  # frames: 2 s after the audio, 5-s steps, 10 s at least


def window_frames(remaining: int, short: bool) -> int:
    """Frames the encoder sees for a window with ``remaining`` frames of audio left."""
    if not short or remaining >= _WINDOW_FRAMES:
        return _WINDOW_FRAMES
    padded = -(-(remaining + _SHORT_MARGIN) // _SHORT_STEP) * _SHORT_STEP
    return min(_WINDOW_FRAMES, max(_SHORT_MIN, padded))


class FasterWhisperOptions(FamilyOptions):
    compute_type: str | None = Field(None, description="CTranslate2 compute type; default from the platform")
    cpu_threads: int = Field(0, ge=0, description="intra-op threads; 0 = the platform's thread budget")
    num_workers: int = Field(1, ge=1, le=16, description="CTranslate2 calls that may run in parallel; "
                             "match the model's `workers` so parallel batches really run at once")
    beam_size: int = Field(5, ge=1, le=16)
    vad_filter: bool = Field(False, description="skip non-speech with Silero before decoding (whole-request "
                             "decoding: no window-by-window batching)")
    condition_on_previous_text: bool = True
    short_windows: bool = Field(True, description="pad a window holding less than 30 s of audio to its audio + "
                                "2 s (in 5-s steps, at least 10 s) instead of 30 s: 2.5-3.5x faster on short "
                                "requests, word error rate within 0.02 of the 30-s path on our tests")


@dataclass(frozen=True)
class WhisperStep:
    """One window of one request: what a worker needs to decode it, state included."""

    job: str  # the request's id: the worker keeps its features between windows under it
    audio: np.ndarray | None  # the whole request: on the first window, and again when the worker lost it
    samples: int  # the request's length in samples
    seek: int  # first feature frame of the window
    task: str
    language: str | None
    temperatures: tuple[float, ...]
    previous_tokens: tuple[int, ...]  # the prompt's previous text (at most _MAX_PROMPT tokens)
    initial_prompt: str | None  # first window only: the request's prompt, tokenized by the worker
    word_timestamps: bool
    last_speech_timestamp: float
    short_window: bool  # pad a last window to its audio (see window_frames), not to 30 s

    @property
    def batch_key(self) -> tuple:
        """Windows may share a batch when their prompts are equally long (see the module doc), they
        decode the same way (beam search first, or sampling at one temperature) and the encoder
        sees as many frames (estimated here from the audio's length; the worker regroups by the
        exact figures, so an estimate that is off costs batching, never correctness)."""
        remaining = self.samples // 160 - self.seek
        return (len(self.previous_tokens), self.initial_prompt, self.temperatures[0],
                window_frames(remaining, self.short_window))


@dataclass(frozen=True)
class WhisperStepResult:
    segments: tuple[Segment, ...]  # ids are numbered by the stepper
    seek: int  # where the next window starts
    content_frames: int  # the request's length in frames: done when seek reaches it
    language: str
    prompt_tokens: tuple[int, ...]  # the initial prompt's tokens (first window), else ()
    temperature: float  # the temperature the window was decoded at
    decoded: bool  # False: skipped as no speech (then the prompt is kept as it was)
    last_speech_timestamp: float
    duration: float  # seconds of audio this window advanced
    needs_audio: bool = False  # the worker had not kept this request's features: send the audio again


@dataclass
class WhisperStepper:
    """Engine-side state of one request between its windows (faster-whisper's loop variables)."""

    item: STTInput
    condition_on_previous_text: bool
    short_windows: bool = True
    job: str = field(default_factory=lambda: uuid.uuid4().hex)
    seek: int = 0
    language: str | None = None
    all_tokens: list[int] = field(default_factory=list)
    prompt_reset_since: int = 0
    last_speech_timestamp: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    started: bool = False
    send_audio: bool = True  # the worker keeps a request's features: the audio goes once, unless it is lost
    done: bool = False

    def next_step(self) -> WhisperStep | None:
        if self.done:
            return None
        temperature = _FALLBACK_TEMPERATURES if self.item.temperature == 0 else (self.item.temperature,)
        step = WhisperStep(
            job=self.job, audio=self.item.audio if self.send_audio else None, samples=len(self.item.audio),
            seek=self.seek, task=self.item.task,
            language=self.language or self.item.language, temperatures=temperature,
            previous_tokens=tuple(self.all_tokens[self.prompt_reset_since:][-_MAX_PROMPT:]),
            initial_prompt=None if self.started else (self.item.prompt or None),
            word_timestamps=self.item.word_timestamps, last_speech_timestamp=self.last_speech_timestamp,
            short_window=self.short_windows,
        )
        self.started = True
        return step

    def feed(self, result: WhisperStepResult) -> list[Segment]:
        """Take a window's result; return its segments, numbered within the request."""
        self.send_audio = result.needs_audio
        if result.needs_audio:  # another replica ran the last window, or the features were dropped
            return []
        self.language = result.language
        self.all_tokens.extend(result.prompt_tokens)
        new = []
        for segment in result.segments:
            self.all_tokens.extend(segment.tokens)
            new.append(replace(segment, id=len(self.segments)))
            self.segments.append(new[-1])
        if result.decoded and (not self.condition_on_previous_text
                               or result.temperature > _PROMPT_RESET_ON_TEMPERATURE):
            self.prompt_reset_since = len(self.all_tokens)
        self.seek = result.seek
        self.last_speech_timestamp = result.last_speech_timestamp
        self.done = self.seek >= result.content_frames
        return new

    def result(self) -> STTOutput:
        text = "".join(s.text for s in self.segments).strip()
        return STTOutput(text=text, language=self.language or self.item.language or "en",
                         duration=self.item.duration, segments=tuple(self.segments))


class FasterWhisper(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STT})
    Options: ClassVar[type[FamilyOptions]] = FasterWhisperOptions
    options: FasterWhisperOptions
    native_batching: ClassVar[bool] = True

    @classmethod
    def stepper(cls, capability: Capability, item: STTInput, options: FasterWhisperOptions) -> WhisperStepper | None:
        """Window-by-window decoding for this request, or None to run it whole (``vad_filter``)."""
        if capability is not Capability.STT or options.vad_filter:
            return None
        return WhisperStepper(item, options.condition_on_previous_text, options.short_windows)

    def load(self) -> None:
        from faster_whisper import WhisperModel

        o = self.options
        threads = o.cpu_threads or self.platform.cpu_threads
        self.model = WhisperModel(
            str(self.weights),
            device=self.platform.ct2_device,
            compute_type=o.compute_type or self.platform.default_compute_type,
            cpu_threads=threads,
            num_workers=o.num_workers,
        )
        self.threads = threads
        self._features: OrderedDict[str, np.ndarray] = OrderedDict()
        self._features_lock = threading.Lock()
        self._tokenizers: dict[tuple[str, str], object] = {}

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

    # --- window by window -------------------------------------------------------------------

    def transcribe_steps(self, steps: list[WhisperStep]) -> list[WhisperStepResult]:
        """Decode the next window of each request; windows with equally long prompts share one
        batched generate call."""
        results: list[WhisperStepResult | None] = [None] * len(steps)
        windows: dict[int, tuple[np.ndarray, int, int]] = {}  # index -> (window features, size, content frames)
        for i, step in enumerate(steps):
            features = self._features_of(step)
            if features is None:
                results[i] = WhisperStepResult((), step.seek, step.samples // 160, step.language or "en", (), 0.0, False,
                                               step.last_speech_timestamp, 0.0, needs_audio=True)
                continue
            content_frames = features.shape[-1] - 1
            size = min(_WINDOW_FRAMES, content_frames - step.seek)
            if size <= 0:  # nothing left (an empty file): done without a window
                results[i] = WhisperStepResult((), max(step.seek, content_frames), content_frames,
                                               step.language or "en", (), 0.0, False, step.last_speech_timestamp, 0.0)
                self._forget(step.job)
                continue
            frames = window_frames(content_frames - step.seek, step.short_window)
            window = _pad_or_trim(features[:, step.seek: step.seek + size], frames)
            windows[i] = (window, size, content_frames)
        if windows:
            order = list(windows)
            encoded = self._encode([windows[i][0] for i in order])
            prompts, tokenizers, prompt_tokens = {}, {}, {}
            for row, i in enumerate(order):
                step = steps[i]
                language = step.language or self._detect_language(encoded[row])
                tokenizer = tokenizers[i] = self._tokenizer(step.task, language)
                previous = list(step.previous_tokens)
                if step.initial_prompt:
                    prompt_tokens[i] = tuple(tokenizer.encode(" " + step.initial_prompt.strip()))
                    previous = list(prompt_tokens[i])
                prompts[i] = self.model.get_prompt(tokenizer, previous)
            groups: dict[tuple[int, int], list[int]] = {}
            for row, i in enumerate(order):
                groups.setdefault((len(prompts[i]), windows[i][0].shape[-1]), []).append(row)
            for rows in groups.values():
                indices = [order[r] for r in rows]
                decoded = self._generate_with_fallback(
                    [encoded[r] for r in rows], [prompts[i] for i in indices], [tokenizers[i] for i in indices],
                    steps[indices[0]].temperatures)
                for r, i, (result, avg_logprob, temperature, compression_ratio) in zip(rows, indices, decoded):
                    _, size, content_frames = windows[i]
                    results[i] = self._window_result(
                        steps[i], tokenizers[i], encoded[r], size, content_frames, prompt_tokens.get(i, ()),
                        result, avg_logprob, temperature, compression_ratio)
                    if results[i].seek >= content_frames:
                        self._forget(steps[i].job)
        return results  # type: ignore[return-value]

    def _features_of(self, step: WhisperStep) -> np.ndarray | None:
        """The request's log-mel features, computed at its first window and kept for the next
        ones; None when they were not kept here (another replica ran the previous window, or they
        were dropped) and the step came without the audio: the stepper then sends it again. Only
        the first window carries the audio, so a long request does not cross to a replica process
        once per window (an hour of audio took 0.8 s to send through a pipe)."""
        with self._features_lock:
            features = self._features.get(step.job)
            if features is not None:
                self._features.move_to_end(step.job)
                return features
        if step.audio is None:
            return None
        features = self.model.feature_extractor(step.audio)
        with self._features_lock:
            self._features[step.job] = features
            # the oldest go first: requests cancelled between windows, or ones another replica runs
            while len(self._features) > 1 and sum(f.nbytes for f in self._features.values()) > _FEATURE_CACHE_BYTES:
                self._features.popitem(last=False)
        return features

    def _forget(self, job: str) -> None:
        with self._features_lock:
            self._features.pop(job, None)

    def _encode(self, windows: list[np.ndarray]) -> list:
        """Encoder outputs in host memory, one per window: encoded as a batch on a GPU, one by one
        on CPU (measured: a batch of 4 windows costs 1.2x four single ones there)."""
        from faster_whisper.transcribe import get_ctranslate2_storage

        def encode(features: np.ndarray):
            return self.model.model.encode(get_ctranslate2_storage(features), to_cpu=True)

        if self.platform.is_gpu and len(windows) > 1:
            return _split_rows(encode(np.stack(windows)), len(windows))
        return [encode(w[np.newaxis]) for w in windows]

    def _detect_language(self, encoder_output) -> str:
        if not self.model.model.is_multilingual:
            return "en"
        token, _probability = self.model.model.detect_language(encoder_output)[0][0]
        return token[2:-2]

    def _tokenizer(self, task: str, language: str):
        from faster_whisper.tokenizer import Tokenizer

        key = (task, language)
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual,
                                              task=task, language=language)
        return self._tokenizers[key]

    def _generate(self, encoder_outputs: list, prompts: list[list[int]], tokenizer, temperature: float) -> list:
        from faster_whisper.transcribe import get_suppressed_tokens

        if temperature > 0:
            kwargs = {"beam_size": 1, "num_hypotheses": _BEST_OF, "sampling_topk": 0,
                      "sampling_temperature": temperature}
        else:
            kwargs = {"beam_size": self.options.beam_size, "patience": 1.0}
        encoder_output = encoder_outputs[0] if len(encoder_outputs) == 1 else _stack_rows(encoder_outputs)
        return self.model.model.generate(
            encoder_output, prompts, length_penalty=1.0, repetition_penalty=1.0, no_repeat_ngram_size=0,
            max_length=_MAX_LENGTH, return_scores=True, return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=int(round(1.0 / self.model.time_precision)), **kwargs,
        )

    def _generate_with_fallback(self, encoder_outputs: list, prompts: list[list[int]], tokenizers: list,
                                temperatures: tuple[float, ...]) -> list[tuple]:
        """faster-whisper's generate_with_fallback over a batch: every window at the first
        temperature in one call, then each window that failed alone at the next temperatures."""
        first = self._generate(encoder_outputs, prompts, tokenizers[0], temperatures[0])
        out = []
        for enc, prompt, tokenizer, result in zip(encoder_outputs, prompts, tokenizers, first):
            candidates: list[tuple] = []
            below_cr: list[tuple] = []
            temperature = temperatures[0]
            for n, temperature in enumerate(temperatures):
                if n > 0:
                    result = self._generate([enc], [prompt], tokenizer, temperature)[0]
                decoded, needs_fallback, repetitive = _judge(result, temperature, tokenizer)
                candidates.append(decoded)
                if not repetitive:
                    below_cr.append(decoded)
                if not needs_fallback:
                    out.append(decoded)
                    break
            else:  # all failed: the most probable, reported at the last temperature tried
                best = max(below_cr or candidates, key=lambda d: d[1])
                out.append((best[0], best[1], temperature, best[3]))
        return out

    def _window_result(self, step: WhisperStep, tokenizer, encoder_output, size: int, content_frames: int,
                       prompt_tokens: tuple[int, ...], result, avg_logprob: float, temperature: float,
                       compression_ratio: float) -> WhisperStepResult:
        from faster_whisper.utils import get_end

        fe = self.model.feature_extractor
        time_offset = step.seek * fe.time_per_frame
        language = tokenizer.language_code
        no_speech = (result.no_speech_prob > _NO_SPEECH_THRESHOLD and not avg_logprob > _LOG_PROB_THRESHOLD)
        if no_speech:  # skip the window
            seek = step.seek + size
            return WhisperStepResult((), seek, content_frames, language, prompt_tokens, temperature, False,
                                     step.last_speech_timestamp, size * fe.time_per_frame)
        current, seek, single_timestamp_ending = self.model._split_segments_by_timestamps(
            tokenizer=tokenizer, tokens=result.sequences_ids[0], time_offset=time_offset, segment_size=size,
            segment_duration=size * fe.time_per_frame, seek=step.seek)
        last_speech = step.last_speech_timestamp
        if step.word_timestamps:
            self.model.add_word_timestamps(
                [current], tokenizer, encoder_output, size, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、",
                last_speech_timestamp=last_speech)
            if not single_timestamp_ending:
                last_word_end = get_end(current)
                if last_word_end is not None and last_word_end > time_offset:
                    seek = round(last_word_end * self.model.frames_per_second)
            last_word_end = get_end(current)
            if last_word_end is not None:
                last_speech = last_word_end
        segments = []
        for s in current:
            text = tokenizer.decode(s["tokens"])
            if s["start"] == s["end"] or not text.strip():
                continue
            segments.append(Segment(
                id=-1, seek=step.seek, start=s["start"], end=s["end"], text=text, tokens=tuple(s["tokens"]),
                temperature=temperature, avg_logprob=avg_logprob, compression_ratio=compression_ratio,
                no_speech_prob=result.no_speech_prob,
                words=tuple(Word(w["word"], w["start"], w["end"], w["probability"]) for w in s.get("words", ())),
            ))
        return WhisperStepResult(tuple(segments), seek, content_frames, language, prompt_tokens, temperature, True,
                                 last_speech, (min(seek, content_frames) - step.seek) * fe.time_per_frame)

    # --- a whole request at a time (vad_filter) ---------------------------------------------

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


def _judge(result, temperature: float, tokenizer) -> tuple[tuple, bool, bool]:
    """A decoded window as (result, avg_logprob, temperature, compression_ratio), whether it needs
    a fallback, and whether it is too repetitive (faster-whisper's rules and thresholds)."""
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # length_penalty 1
    text = tokenizer.decode(tokens).strip()
    data = text.encode("utf-8")
    compression_ratio = len(data) / len(zlib.compress(data))
    repetitive = compression_ratio > _COMPRESSION_RATIO_THRESHOLD
    needs = repetitive or avg_logprob < _LOG_PROB_THRESHOLD
    if result.no_speech_prob > _NO_SPEECH_THRESHOLD and avg_logprob < _LOG_PROB_THRESHOLD:
        needs = False  # silence
    return (result, avg_logprob, temperature, compression_ratio), needs, repetitive


def _pad_or_trim(window: np.ndarray, frames: int) -> np.ndarray:
    if window.shape[-1] >= frames:
        return window[:, :frames]
    return np.pad(window, ((0, 0), (0, frames - window.shape[-1])))


def _stack_rows(views: list):
    """Encoder outputs of single windows as one batch (CPU storage)."""
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.concatenate([np.asarray(v) for v in views]))


def _split_rows(batch, n: int) -> list:
    import ctranslate2

    array = np.asarray(batch)
    return [ctranslate2.StorageView.from_array(np.ascontiguousarray(array[i:i + 1])) for i in range(n)]


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
