"""A worker owns one loaded model: it resolves weights and platform, loads the family, and runs
batches through the family's batch method for the batch's capability (BATCH_METHODS, or
STEP_METHODS for steps and for chunks of live streams), checking that every batch comes back with
one output per input, in order. It keeps no state between batches: a stepped request's or live
stream's state travels in its steps. It also runs streams: the family's stream method
(STREAM_METHODS), each output handed to ``emit`` as soon as it exists.

Every batch and stream holds ``family.threads`` tokens of the process's thread budget while the
family computes (platforms.threads), so models sharing this process never run more intra-op
threads at once than the budget allows. Models on a GPU platform skip the budget.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.config import ModelConfig
from speechengine.errors import InferenceError, SpeechEngineError
from speechengine.models.base import BATCH_METHODS, STEP_METHODS, STREAM_METHODS, ModelFamily, ModelInfo, Stepped
from speechengine.models.registry import family_class
from speechengine.platforms import process_budget, resolve_platform
from speechengine.weights import describe_source, resolve_weights


class Worker:
    def __init__(self, config: ModelConfig, cache_dir: Path, *, cpu_threads: int | None = None) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.cpu_threads = cpu_threads  # None: the size of this process's thread budget
        self.family: ModelFamily | None = None

    def load(self) -> ModelInfo:
        """Blocking: resolve weights, load the model, warm it up. Returns what the model offers."""
        t0 = time.perf_counter()
        cls = family_class(self.config.family)
        platform = resolve_platform(self.config.device, strict=self.config.strict,
                                    cpu_threads=self.cpu_threads or process_budget().total)
        weights = resolve_weights(self.config.weights, self.cache_dir, self.config.id)
        family = cls(weights, self.config.family_options(), platform,
                     cache_dir=self.cache_dir / "models" / self.config.id)
        family.load()
        self.family = family
        logger.info(
            "loaded model {} (family {}, {}, on {}, {} thread(s) per call) in {:.1f} s",
            self.config.id, self.config.family, describe_source(self.config.weights), platform.name,
            family.threads, time.perf_counter() - t0,
        )
        return replace(family.info(), threads=family.threads)

    def unload(self) -> None:
        if self.family is not None:
            self.family.close()
            self.family = None

    def check(self, capability: Capability, item: object) -> tuple:
        """Validate one input (InvalidRequestError if the model cannot serve it); return its batch key."""
        family = self.family
        if family is None:
            raise InferenceError(f"model {self.config.id!r} is not loaded")
        family.validate(capability, item)
        return family.batch_key(capability, item)

    def _threads(self, family: ModelFamily) -> AbstractContextManager:
        """Hold the family's threads of the process budget (GPU platforms: nothing to hold)."""
        if family.platform.is_gpu:
            return nullcontext()
        return process_budget().hold(family.threads)

    def run_batch(self, capability: Capability | Stepped, items: list) -> list:
        """Blocking: run one batch (of inputs, or of steps). Non-typed failures become
        InferenceError (logged with a trace)."""
        family = self.family
        if family is None:
            raise InferenceError(f"model {self.config.id!r} is not loaded")
        if isinstance(capability, Stepped):
            method = getattr(family, STEP_METHODS[capability.capability])
        else:
            method = getattr(family, BATCH_METHODS[capability])
        try:
            with self._threads(family):
                outputs = method(items)
        except SpeechEngineError:
            raise
        except Exception as exc:
            logger.exception("model {} failed on a batch of {}", self.config.id, len(items))
            raise InferenceError(f"model {self.config.id!r} failed: {type(exc).__name__}: {exc}") from exc
        if len(outputs) != len(items):
            raise InferenceError(
                f"model {self.config.id!r} returned {len(outputs)} outputs for {len(items)} inputs"
            )
        return outputs

    def run_stream(self, capability: Capability, item: Any, emit: Callable[[Any], None],
                   cancelled: threading.Event) -> int:
        """Blocking: run one stream, passing each output to ``emit``; returns how many were emitted.

        A set ``cancelled`` stops it at the next output (the one in progress is finished, then
        dropped); the family's iterator is closed either way, so it releases what it holds.
        """
        family = self.family
        if family is None:
            raise InferenceError(f"model {self.config.id!r} is not loaded")
        emitted = 0
        outputs = None
        try:
            with self._threads(family):
                outputs = getattr(family, STREAM_METHODS[capability])(item)
                for output in outputs:
                    if cancelled.is_set():
                        break
                    emit(output)
                    emitted += 1
        except SpeechEngineError:
            raise
        except Exception as exc:
            logger.exception("model {} failed while streaming", self.config.id)
            raise InferenceError(f"model {self.config.id!r} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            close = getattr(outputs, "close", None)
            if close is not None:
                close()
        return emitted
