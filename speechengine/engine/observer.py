"""What the engine reports as it works. The default observer does nothing; speechengine.metrics
implements it with Prometheus, so the engine itself never imports a metrics library."""

from __future__ import annotations

from speechengine.capabilities import Capability
from speechengine.scheduler import RequestTrace


class EngineObserver:
    def model_loaded(self, model: str, seconds: float) -> None: ...

    def model_unloaded(self, model: str, reason: str) -> None: ...

    def batch_done(self, model: str, capability: Capability, size: int, run_s: float, audio_s: float) -> None: ...

    def request_done(self, model: str, capability: Capability, trace: RequestTrace,
                     audio_in_s: float, audio_out_s: float) -> None: ...

    def rejected(self, model: str) -> None: ...

    def watch_queue(self, model: str, depth) -> None:
        """``depth`` is a zero-argument callable returning the model's current queue length."""

    def watch_loaded(self, count) -> None:
        """``count`` is a zero-argument callable returning how many models are loaded."""

    def watch_threads(self, usage, models) -> None:
        """``usage`` returns the thread budget's counters (platforms.ThreadUse); ``models`` returns
        loaded model -> intra-op threads per call."""
