"""The executor contract: where a model's batches run. One executor serves one model.

An executor loads the model (in every replica it has), checks single inputs before they are
queued (validation + batch key, on a loaded replica), runs batches, reports replica health and
shuts down. The engine only awaits its coroutines; blocking work never runs on the event loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig, RaySettings
from speechengine.models.base import ModelInfo


@dataclass(frozen=True)
class ReplicaHealth:
    index: int
    alive: bool
    pid: int | None
    inflight: int
    restarts: int


class Executor(ABC):
    kind: str

    def __init__(self, config: ModelConfig, cache_dir: Path, ray: RaySettings) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.ray_settings = ray

    @property
    def concurrency(self) -> int:
        """Batches that may run at once over all replicas (the scheduler's max_inflight)."""
        return self.config.replicas * self.config.workers

    @abstractmethod
    async def load(self) -> ModelInfo:
        """Load the model everywhere it runs; return what it offers."""

    @abstractmethod
    async def check(self, capability: Capability, item: object) -> tuple:
        """Validate one input against the loaded model; return its batch key."""

    @abstractmethod
    async def run(self, capability: Capability, items: list) -> list:
        """Run one batch; one output per input, in order."""

    @abstractmethod
    def health(self) -> list[ReplicaHealth]:
        """One entry per replica."""

    @abstractmethod
    async def shutdown(self) -> None:
        """Release every replica; the executor may be loaded again afterwards."""
