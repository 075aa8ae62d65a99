"""Executors: where a model's batches run, chosen per model by ``executor:`` in config.

EXECUTORS is the one table from the config value to the executor class; the Ray executor is
imported only when a model asks for it, so ``ray`` stays an optional extra.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from speechengine.config import ModelConfig, RaySettings
from speechengine.executor.base import Executor, ReplicaHealth
from speechengine.executor.local import LocalExecutor

EXECUTORS: dict[str, str] = {
    "local": "speechengine.executor.local:LocalExecutor",
    "process": "speechengine.executor.process:ProcessExecutor",
    "ray": "speechengine.executor.ray:RayExecutor",
}


def make_executor(config: ModelConfig, cache_dir: Path, ray: RaySettings) -> Executor:
    module, _, name = EXECUTORS[config.executor].partition(":")
    cls: type[Executor] = getattr(importlib.import_module(module), name)
    return cls(config, cache_dir, ray)


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ReplicaHealth", "make_executor"]
