"""Workers: load a model through the registry and run batches on a platform."""

from speechengine.worker.worker import Worker

__all__ = ["Worker"]
