"""The model-family contract: what every family declares and implements.

A family declares its capabilities and implements one batch method per capability (see
BATCH_METHODS). Each batch method takes a list of inputs and returns a list of outputs of the
same length and order; the worker checks that. A family that cannot batch natively loops and
says so in ``native_batching``.

A family may also stream a capability (STREAM_METHODS): the method takes one input and returns
an iterator that yields partial outputs as they are produced (for STT, each decoded Segment).
The worker stops iterating, and closes the iterator, when the request is cancelled.

A family may also run a capability in steps (STEP_METHODS), for work that is long and can be
cut, like Whisper's 30-second windows: ``stepper`` gives the engine a plain object holding one
request's state between steps, the engine submits each step to the scheduler as its own unit
(``Stepped(capability)``), and the step method runs a batch of steps of different requests. A
long request then advances one step per turn, interleaved with newer requests, and the worker
keeps no state it cannot rebuild from the step itself.

Live streams use the same step method (VAD's ``detect_chunks``): the engine keeps each live
stream's state and submits its chunks as steps, so chunks of different streams share a batch. Such
a family says how long a chunk's unit is in ``ModelInfo.frame_samples``; chunks are whole multiples
of it (engine/vad_stream.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from speechengine.capabilities import Capability
from speechengine.platforms import Platform

# The one table from capability to batch method name; the worker looks methods up here.
BATCH_METHODS: dict[Capability, str] = {
    Capability.STT: "transcribe_batch",
    Capability.TTS: "synthesize_batch",
    Capability.VAD: "detect_batch",
    Capability.EMBED: "embed_batch",
    Capability.RESTORE: "restore_batch",
    Capability.VC: "convert_batch",
}

# Capability -> method yielding partial outputs for one input; optional per family.
STREAM_METHODS: dict[Capability, str] = {
    Capability.STT: "transcribe_stream",
}


# Capability -> method running a batch of steps (see ``ModelFamily.stepper``); optional per family.
STEP_METHODS: dict[Capability, str] = {
    Capability.STT: "transcribe_steps",
    Capability.VAD: "detect_chunks",  # chunks of live streams (engine/vad_stream.py), not a stepper
}


@dataclass(frozen=True)
class Stepped:
    """The scheduler work type of the steps of ``capability``."""

    capability: Capability


class Stepper(Protocol):
    """Engine-side state of one stepped request."""

    def next_step(self) -> Any | None:
        """The next step's input (it has a ``batch_key``), or None when the request is done."""

    def feed(self, result: Any) -> list:
        """Take a step's result; return the partial outputs it completes (for a stream)."""

    def result(self) -> Any:
        """The request's output, once next_step() has returned None."""


class FamilyOptions(BaseModel):
    """Base of each family's options; unknown keys are a config error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model tells clients about itself (shown in /v1/models)."""

    voices: tuple[str, ...] = ()
    default_voice: str | None = None
    languages: tuple[str, ...] = ()
    sample_rate: int | None = None
    tasks: tuple[str, ...] = ()  # STT: "transcribe" and, for multilingual models, "translate"
    frame_samples: int | None = None  # families that take live streams: samples per output frame
    threads: int = 0  # intra-op threads one batch call keeps busy (filled in by the worker)
    extra: dict = field(default_factory=dict)


class ModelFamily:
    """Base class of a family. Subclasses set the ClassVars and implement load() and batch methods."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Options: ClassVar[type[FamilyOptions]] = FamilyOptions
    native_batching: ClassVar[bool] = False
    # The most intra-op threads one call of a batch method keeps busy; the worker takes that many
    # from the process's thread budget around each call. Families that know better set it in load().
    threads: int

    def __init__(self, weights: Path, options: FamilyOptions, platform: Platform, *,
                 cache_dir: Path | None = None) -> None:
        self.weights = weights
        self.options = options
        self.platform = platform
        self.cache_dir = cache_dir  # a writable folder of this model's own, for files it derives
        self.threads = platform.cpu_threads

    def load(self) -> None:
        """Load weights (blocking; runs in a worker thread). Warm up here, not on the first request."""
        raise NotImplementedError

    def info(self) -> ModelInfo:
        return ModelInfo()

    def validate(self, capability: Capability, item: object) -> None:
        """Reject an input the model cannot serve (raise InvalidRequestError) before it is queued."""

    def batch_key(self, capability: Capability, item: object) -> tuple:
        """Items with equal keys may share a batch. Default: any two items may."""
        return ()

    @classmethod
    def stepper(cls, capability: Capability, item: Any, options: FamilyOptions) -> Stepper | None:
        """A Stepper to run ``item`` step by step, or None to run it as one unit (the default)."""
        return None

    def can_stream(self, capability: Capability) -> bool:
        return callable(getattr(self, STREAM_METHODS.get(capability, ""), None))

    def close(self) -> None:
        """Release resources; the default lets garbage collection do it."""
