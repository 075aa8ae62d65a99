"""The model-family contract: what every family declares and implements.

A family declares its capabilities and implements one batch method per capability (see
BATCH_METHODS). Each batch method takes a list of inputs and returns a list of outputs of the
same length and order; the worker checks that. A family that cannot batch natively loops and
says so in ``native_batching``.

A family may also stream a capability (STREAM_METHODS): the method takes one input and returns
an iterator that yields partial outputs as they are produced (for STT, each decoded Segment).
The worker stops iterating, and closes the iterator, when the request is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

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
    extra: dict = field(default_factory=dict)


class ModelFamily:
    """Base class of a family. Subclasses set the ClassVars and implement load() and batch methods."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Options: ClassVar[type[FamilyOptions]] = FamilyOptions
    native_batching: ClassVar[bool] = False

    def __init__(self, weights: Path, options: FamilyOptions, platform: Platform, *,
                 cache_dir: Path | None = None) -> None:
        self.weights = weights
        self.options = options
        self.platform = platform
        self.cache_dir = cache_dir  # a writable folder of this model's own, for files it derives

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

    def can_stream(self, capability: Capability) -> bool:
        return callable(getattr(self, STREAM_METHODS.get(capability, ""), None))

    def close(self) -> None:
        """Release resources; the default lets garbage collection do it."""
