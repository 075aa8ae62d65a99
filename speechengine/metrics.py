"""Prometheus metrics: one registry per app (no module globals), fed by the engine through the
EngineObserver interface and by the HTTP middleware. Served at GET /metrics."""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from speechengine.capabilities import Capability
from speechengine.engine.observer import EngineObserver
from speechengine.platforms import ThreadUse
from speechengine.scheduler import RequestTrace

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_RTF = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
_BATCH = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _ThreadCollector(Collector):
    """The thread budget's counters, read when /metrics is scraped."""

    def __init__(self, usage: Callable[[], ThreadUse], models: Callable[[], dict[str, int]]) -> None:
        self.usage = usage
        self.models = models

    def collect(self) -> Iterator:
        p = "speechengine_thread"
        u = self.usage()
        yield GaugeMetricFamily(p + "_budget", "intra-op threads that may compute at once in the server process",
                                value=u.budget)
        yield GaugeMetricFamily(p + "s_in_use", "budget threads held by running batches", value=u.in_use)
        yield GaugeMetricFamily(p + "s_peak", "most budget threads held at once", value=u.peak)
        yield CounterMetricFamily(p + "_waits", "batches that waited for budget threads", value=u.waits)
        yield CounterMetricFamily(p + "_wait_seconds", "time batches waited for budget threads", value=u.wait_s)
        per_model = GaugeMetricFamily(p + "s_per_call", "intra-op threads one batch of a model keeps busy",
                                      labels=["model"])
        for model, threads in sorted(self.models().items()):
            per_model.add_metric([model], threads)
        yield per_model


class Metrics(EngineObserver):
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "speechengine_"
        self.requests = Counter(p + "requests", "HTTP requests by endpoint, model and status",
                                ["endpoint", "model", "status"], registry=r)
        self.latency = Histogram(p + "request_duration_seconds", "HTTP request latency",
                                 ["endpoint", "model"], buckets=_LATENCY, registry=r)
        self.ttfb = Histogram(p + "time_to_first_byte_seconds", "time to the first response body byte",
                              ["endpoint", "model"], buckets=_LATENCY, registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "requests waiting in a model's scheduler", ["model"], registry=r)
        self.queue_wait = Histogram(p + "queue_wait_seconds", "time a request waited for its batch",
                                    ["model"], buckets=_LATENCY, registry=r)
        self.batch_size = Histogram(p + "batch_size", "requests per batch", ["model", "capability"],
                                    buckets=_BATCH, registry=r)
        self.audio_in = Counter(p + "audio_input_seconds", "seconds of audio received (stt, vad, ...)",
                                ["model", "capability"], registry=r)
        self.audio_out = Counter(p + "audio_output_seconds", "seconds of audio produced (tts, ...)",
                                 ["model", "capability"], registry=r)
        self.rtf = Histogram(p + "real_time_factor", "batch inference time / audio seconds in the batch",
                             ["model", "capability"], buckets=_RTF, registry=r)
        self.load_seconds = Histogram(p + "model_load_seconds", "model load duration", ["model"],
                                      buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300), registry=r)
        self.unloads = Counter(p + "model_unloads", "model unloads by reason", ["model", "reason"], registry=r)
        self.loaded = Gauge(p + "loaded_models", "models currently loaded", registry=r)
        self.rejected_total = Counter(p + "rejected_requests", "requests refused with 429 (queue full)",
                                      ["model"], registry=r)
        self._threads: _ThreadCollector | None = None

    # --- EngineObserver -----------------------------------------------------------------------

    def model_loaded(self, model: str, seconds: float) -> None:
        self.load_seconds.labels(model).observe(seconds)

    def model_unloaded(self, model: str, reason: str) -> None:
        self.unloads.labels(model, reason.split(";")[0].split(" ")[0]).inc()

    def batch_done(self, model: str, capability: Capability, size: int, run_s: float, audio_s: float) -> None:
        self.batch_size.labels(model, capability.value).observe(size)
        if audio_s > 0:
            self.rtf.labels(model, capability.value).observe(run_s / audio_s)

    def request_done(self, model: str, capability: Capability, trace: RequestTrace,
                     audio_in_s: float, audio_out_s: float) -> None:
        self.queue_wait.labels(model).observe(trace.queue_wait_s)
        if audio_in_s:
            self.audio_in.labels(model, capability.value).inc(audio_in_s)
        if audio_out_s:
            self.audio_out.labels(model, capability.value).inc(audio_out_s)

    def rejected(self, model: str) -> None:
        self.rejected_total.labels(model).inc()

    def watch_queue(self, model: str, depth) -> None:
        self.queue_depth.labels(model).set_function(depth)

    def watch_loaded(self, count) -> None:
        self.loaded.set_function(count)

    def watch_threads(self, usage, models) -> None:
        if self._threads is not None:  # a new engine in the same app (tests): follow the new one
            self.registry.unregister(self._threads)
        self._threads = _ThreadCollector(usage, models)
        self.registry.register(self._threads)

    # --- HTTP ---------------------------------------------------------------------------------

    def http_request(self, endpoint: str, model: str, status: int, seconds: float, ttfb: float | None) -> None:
        self.requests.labels(endpoint, model, str(status)).inc()
        self.latency.labels(endpoint, model).observe(seconds)
        if ttfb is not None:
            self.ttfb.labels(endpoint, model).observe(ttfb)

    def render(self) -> bytes:
        return generate_latest(self.registry)
