"""A fake model family for engine unit tests (never used against the real server)."""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from pydantic import Field

import numpy as np

from speechengine.capabilities import Capability, TTSInput, TTSOutput, VCInput, VCOutput
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo


class FakeOptions(FamilyOptions):
    load_seconds: float = Field(0.0, ge=0)
    fail_load: bool = False
    synth_seconds: float = Field(0.0, ge=0)


class FakeTTS(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TTS})
    Options: ClassVar[type[FamilyOptions]] = FakeOptions
    loads = 0
    unloads = 0
    lock = threading.Lock()

    def close(self) -> None:
        with FakeTTS.lock:
            FakeTTS.unloads += 1

    def load(self) -> None:
        self.threads = 0  # it sleeps: no core of the thread budget to hold
        with FakeTTS.lock:
            FakeTTS.loads += 1
        time.sleep(self.options.load_seconds)
        if self.options.fail_load:
            raise RuntimeError("weights are corrupt")

    def info(self) -> ModelInfo:
        return ModelInfo(voices=("v1",), default_voice="v1", sample_rate=8000)

    def synthesize_batch(self, items: list[TTSInput]) -> list[TTSOutput]:
        self.last_thread = threading.current_thread().name
        time.sleep(self.options.synth_seconds)
        return [TTSOutput(np.zeros(len(i.text), np.float32), 8000) for i in items]


class FakeVC(ModelFamily):
    """Records what it was asked to convert; output = input with the reference's first sample added."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.VC})
    seen: ClassVar[list] = []

    def load(self) -> None:
        pass

    def convert_batch(self, items: list[VCInput]) -> list[VCOutput]:
        FakeVC.seen.extend(items)
        return [VCOutput(i.audio + i.target.audio[0], 16000) for i in items]
