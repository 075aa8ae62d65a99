"""Capabilities and the typed, frozen inputs and outputs that cross the engine for each one.

Audio inside the engine is always mono float32 numpy at a stated sample rate; decoding and
encoding happen at the HTTP edge (speechengine/audio).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class Capability(str, enum.Enum):
    TTS = "tts"
    STT = "stt"
    VAD = "vad"
    EMBED = "embed"
    RESTORE = "restore"
    VC = "vc"


# --- speech-to-text (and translation) -------------------------------------------------------


@dataclass(frozen=True)
class STTInput:
    audio: np.ndarray  # mono float32 at 16 kHz
    task: str = "transcribe"  # or "translate" (to English)
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False

    @property
    def duration(self) -> float:
        return len(self.audio) / 16000.0


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    probability: float = 0.0


@dataclass(frozen=True)
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class STTOutput:
    text: str
    language: str
    duration: float
    segments: tuple[Segment, ...] = ()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


# --- text-to-speech -------------------------------------------------------------------------


@dataclass(frozen=True)
class TTSInput:
    text: str
    voice: str  # a voice of the model (OpenAI names are mapped before the engine sees them)
    speed: float = 1.0
    instructions: str | None = None


@dataclass(frozen=True)
class TTSOutput:
    audio: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


# --- voice activity detection ---------------------------------------------------------------


@dataclass(frozen=True)
class VADInput:
    audio: np.ndarray  # mono float32 at 16 kHz
    threshold: float = 0.5
    min_silence_duration_ms: int = 500
    speech_pad_ms: int = 30
    min_speech_duration_ms: int = 0

    @property
    def duration(self) -> float:
        return len(self.audio) / 16000.0


@dataclass(frozen=True)
class VADChunkInput:
    """The next whole frames of a live stream, with the stream's recurrent state (None at its start).
    The state travels with the chunk so any worker, in any process, can take the next one."""

    audio: np.ndarray  # mono float32 at 16 kHz, a whole number of the model's frames
    state: tuple[np.ndarray, ...] | None = None  # family-defined; returned by the previous chunk

    @property
    def duration(self) -> float:
        return len(self.audio) / 16000.0


@dataclass(frozen=True)
class VADChunkOutput:
    probabilities: np.ndarray  # one speech probability per frame of the chunk
    state: tuple[np.ndarray, ...]  # to send with the stream's next chunk


@dataclass(frozen=True)
class SpeechSpan:
    start: float
    end: float


@dataclass(frozen=True)
class VADOutput:
    duration: float
    segments: tuple[SpeechSpan, ...] = field(default_factory=tuple)

    @property
    def speech_duration(self) -> float:
        return sum(s.end - s.start for s in self.segments)


# --- speaker embeddings ---------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedInput:
    audio: np.ndarray  # mono float32 at ``sample_rate`` (the model's native rate)
    sample_rate: int = 16000

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


@dataclass(frozen=True)
class EmbedOutput:
    embedding: np.ndarray  # float32, L2 norm 1


# --- restoration (denoising) ----------------------------------------------------------------


@dataclass(frozen=True)
class RestoreInput:
    audio: np.ndarray  # mono float32 at ``sample_rate`` (the model's native rate)
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


@dataclass(frozen=True)
class RestoreOutput:
    audio: np.ndarray  # mono float32, same rate and length as the input
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


# --- voice conversion -----------------------------------------------------------------------


@dataclass(frozen=True)
class SpeakerReference:
    """A target speaker: reference speech plus a stable key families cache its profile under."""

    key: str  # "sha256:<hex>" of an uploaded reference, or "voice:<id>" for a saved voice
    audio: np.ndarray  # mono float32 at 16 kHz
    profile_dir: Path | None = None  # where families may persist this speaker's profiles (saved voices)


@dataclass(frozen=True)
class VCInput:
    audio: np.ndarray  # source speech, mono float32 at 16 kHz
    target: SpeakerReference
    strength: float | None = None  # 0..1, family-defined; None = the model's default

    @property
    def duration(self) -> float:
        return len(self.audio) / 16000.0


@dataclass(frozen=True)
class VCOutput:
    audio: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


INPUT_TYPES: dict[Capability, type] = {
    Capability.STT: STTInput,
    Capability.TTS: TTSInput,
    Capability.VAD: VADInput,
    Capability.EMBED: EmbedInput,
    Capability.RESTORE: RestoreInput,
    Capability.VC: VCInput,
}
