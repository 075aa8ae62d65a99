"""Executors: where a batch runs. Chosen per model by config; the engine only awaits futures."""

from speechengine.executor.local import LocalExecutor

__all__ = ["LocalExecutor"]
