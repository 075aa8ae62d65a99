"""Unit tests of stepped requests (a family's ``stepper``) through the engine, with a fake family:
a long request advances one step per turn, so short ones sent with it finish first; every
request ends once; closing a stepped stream stops submitting its steps."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest

from speechengine.capabilities import Capability, STTInput, STTOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.models import registry
from speechengine.models.base import FamilyOptions, ModelFamily
from tests.test_engine_streaming import settle

STEP_S = 0.02


@dataclass(frozen=True)
class Step:
    name: str
    index: int
    batch_key: tuple = ()


@dataclass
class CountingStepper:
    """A request of ``steps`` steps (one per second of audio); each step's result is its index."""

    name: str
    steps: int
    done: list[int] = field(default_factory=list)

    def next_step(self) -> Step | None:
        return Step(self.name, len(self.done)) if len(self.done) < self.steps else None

    def feed(self, result: int) -> list[int]:
        self.done.append(result)
        return [result]

    def result(self) -> STTOutput:
        return STTOutput(text=f"{self.name}:{self.done}", language="en", duration=float(self.steps))


class SteppedSTT(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STT})
    batches: ClassVar[list[list[str]]] = []

    @classmethod
    def stepper(cls, capability, item: STTInput, options: FamilyOptions) -> CountingStepper:
        return CountingStepper(item.prompt or "", round(item.duration))

    def load(self) -> None:
        self.threads = 0  # it sleeps: no core of the thread budget to hold

    def transcribe_batch(self, items):
        raise AssertionError("stepped requests never run whole")

    def transcribe_steps(self, steps: list[Step]) -> list[int]:
        SteppedSTT.batches.append([f"{s.name}{s.index}" for s in steps])
        time.sleep(STEP_S)
        return [s.index for s in steps]


@pytest.fixture
def engine(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.FAMILIES, "stepped-stt", "tests.test_engine_steps:SteppedSTT")
    registry.family_class.cache_clear()
    SteppedSTT.batches = []
    models = [{"id": "stt", "family": "stepped-stt", "weights": {"local": str(tmp_path)},
               "max_batch_size": 4, "max_wait_ms": 5, "workers": 1}]
    yield AsyncEngine(Settings(cache_dir=tmp_path, models=models))
    registry.family_class.cache_clear()


def request(name: str, seconds: int) -> STTInput:
    return STTInput(audio=np.zeros(seconds * 16000, np.float32), prompt=name)


async def test_a_long_request_takes_turns_with_short_ones(engine):
    finished: list[str] = []

    async def transcribe(name: str, seconds: int) -> str:
        out = await engine.submit("stt", Capability.STT, request(name, seconds))
        finished.append(name)
        return out.text

    long = asyncio.create_task(transcribe("L", 15))
    await asyncio.sleep(0.005)  # the long one is first in line
    shorts = [asyncio.create_task(transcribe(f"s{i}", 1)) for i in range(8)]
    texts = await asyncio.gather(long, *shorts)
    assert texts[0] == f"L:{list(range(15))}"  # every step once, in order
    assert texts[1:] == [f"s{i}:[0]" for i in range(8)]
    assert finished[-1] == "L" and sorted(finished[:-1]) == [f"s{i}" for i in range(8)]
    steps = [s for batch in SteppedSTT.batches for s in batch]
    assert sorted(steps) == sorted([f"L{i}" for i in range(15)] + [f"s{i}0" for i in range(8)])  # none twice
    # the short ones shared batches, and all ran before the long one's third step
    last_short = max(i for i, batch in enumerate(SteppedSTT.batches) if any(s.startswith("s") for s in batch))
    long_steps_before = sum(s.startswith("L") for batch in SteppedSTT.batches[:last_short + 1] for s in batch)
    assert long_steps_before <= 3
    assert max(len(batch) for batch in SteppedSTT.batches) > 1
    sched = engine.resolve("stt").scheduler
    assert sched.stats.completed == len(steps) and sched.queued == 0
    await engine.stop()


async def test_closing_a_stepped_stream_stops_its_steps(engine):
    outputs = await engine.stream("stt", Capability.STT, request("L", 50))
    assert await anext(outputs) == 0
    await outputs.aclose()
    sched = engine.resolve("stt").scheduler
    await settle(lambda: sched.queued == 0 and sched.running_batches == 0)
    ran = len(SteppedSTT.batches)
    await asyncio.sleep(5 * STEP_S)
    assert len(SteppedSTT.batches) == ran <= 2  # the step after the first may have been running; no more
    assert engine.resolve("stt").active == 0
    await engine.stop()
