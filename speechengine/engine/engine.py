"""AsyncEngine: resolves a model name (id or alias) to its deployment, checks the capability,
and submits the typed request to that model's scheduler, for one result or as a stream. It also
owns model lifetimes: preload at start, idle-TTL unload (``reap``), and least-recently-used
eviction under ``max_loaded_models``. It sizes this process's thread budget from ``threads``
(platforms.threads), which every local worker draws from. Knows nothing about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import aclosing
from dataclasses import replace
from typing import Any, AsyncIterator, Callable

from loguru import logger

from speechengine.audio import resample
from speechengine.capabilities import Capability, SpeakerReference, TTSInput, TTSOutput, VCInput, VCOutput
from speechengine.config import Settings
from speechengine.engine.deployment import Deployment
from speechengine.engine.observer import EngineObserver
from speechengine.engine.vad_stream import VADStream, VADStreamOptions
from speechengine.errors import InvalidRequestError, ModelNotFoundError, UnsupportedCapabilityError
from speechengine.platforms import cpu_count, size_process_budget
from speechengine.scheduler import RequestTrace
from speechengine.sentences import split_text


class AsyncEngine:
    def __init__(self, settings: Settings, *, observer: EngineObserver | None = None,
                 clock: Callable[[], float] = time.monotonic, reap_interval_s: float = 1.0) -> None:
        self.settings = settings
        self.observer = observer or EngineObserver()
        self.clock = clock
        self.reap_interval_s = reap_interval_s
        self.deployments: dict[str, Deployment] = {}
        self._names: dict[str, Deployment] = {}
        self._reaper: asyncio.Task | None = None
        self.thread_budget = size_process_budget(settings.threads)
        self._check_replica_threads()
        for cfg in settings.models:
            dep = Deployment(cfg, settings.cache_dir, settings.ray, observer=self.observer, clock=clock,
                             before_load=self._make_room)
            self.deployments[cfg.id] = dep
            for name in (cfg.id, *cfg.aliases):
                self._names[name] = dep
        self.observer.watch_loaded(lambda: sum(d.loaded for d in self.deployments.values()))
        self.observer.watch_threads(self.thread_budget.usage, self.model_threads)

    def model_threads(self) -> dict[str, int]:
        """Loaded model -> intra-op threads one of its batch calls keeps busy."""
        return {d.id: d.info.threads for d in self.deployments.values() if d.loaded and d.info is not None}

    def _check_replica_threads(self) -> None:
        """Replica processes have budgets of their own (replica_threads each), outside this
        process's: warn when together they may keep more threads busy than there are cores."""
        demand, cores = self.settings.replica_threads(), cpu_count()
        if demand > cores:
            logger.warning("process/ray replicas may keep {} intra-op threads busy (replicas x replica_threads) "
                           "on {} cores: they will oversubscribe the cores when all are busy", demand, cores)
        logger.info("thread budget: {} intra-op threads at once in this process{}", self.thread_budget.total,
                    f", plus {demand} in replica processes" if demand else "")

    async def start(self) -> None:
        """Load the models marked preload, one at a time (bounded memory and CPU at start)."""
        for dep in self.deployments.values():
            if dep.config.preload:
                await dep.ensure_loaded()
        if any(d.config.ttl_s >= 0 for d in self.deployments.values()):
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever(), name="ttl-reaper")
        logger.info("engine ready: {} model(s) configured, {} loaded", len(self.deployments),
                    sum(d.loaded for d in self.deployments.values()))

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for dep in self.deployments.values():
            await dep.close()

    def resolve(self, name: str) -> Deployment:
        try:
            return self._names[name]
        except KeyError:
            known = ", ".join(sorted(self._names)) or "none"
            raise ModelNotFoundError(f"model {name!r} does not exist; available: {known}", param="model") from None

    def resolve_for(self, name: str, capability: Capability) -> Deployment:
        dep = self.resolve(name)
        if capability not in dep.capabilities:
            caps = ", ".join(sorted(c.value for c in dep.capabilities))
            raise UnsupportedCapabilityError(
                f"model {name!r} does not support {capability.value} (it supports: {caps})", param="model"
            )
        return dep

    async def submit(self, model: str, capability: Capability, item: object,
                     trace: RequestTrace | None = None) -> object:
        return await self.resolve_for(model, capability).submit(capability, item, trace)

    async def synthesize_stream(self, model: str, item: TTSInput, trace: RequestTrace | None = None, *,
                                target: SpeakerReference | None = None) -> AsyncIterator[TTSOutput | VCOutput]:
        """Validate, then return the audio of ``item`` piece by piece (sentences, in order), each piece
        its own scheduler unit. Joined, the pieces are the whole synthesis. With ``target`` (a custom
        voice), each piece is also converted toward it, as its own VC request, as soon as it is made."""
        dep = self.resolve_for(model, Capability.TTS)
        pieces = split_text(item.text)
        if not pieces:
            raise InvalidRequestError("'input' has no text to speak", param="input")
        vc_model = self._conversion_model() if target is not None else None
        speech = await dep.submit_each(Capability.TTS, [replace(item, text=piece) for piece in pieces], trace)
        return speech if vc_model is None else self._converted(speech, vc_model, target)

    async def _converted(self, speech: AsyncIterator[TTSOutput], vc_model: str,
                         target: SpeakerReference) -> AsyncIterator[VCOutput]:
        async with aclosing(speech):
            async for piece in speech:
                audio = await asyncio.to_thread(resample, piece.audio, piece.sample_rate, 16000)
                yield await self.submit(vc_model, Capability.VC, VCInput(audio=audio, target=target))

    def _conversion_model(self) -> str:
        vc_model = self.settings.conversion_model()
        if vc_model is None:
            raise UnsupportedCapabilityError("custom voices need a voice-conversion model; none is configured",
                                             param="voice")
        return vc_model

    async def stream(self, model: str, capability: Capability, item: object,
                     trace: RequestTrace | None = None) -> AsyncIterator[Any]:
        """Validate, then return the model's partial outputs for ``item`` as they are produced."""
        return await self.resolve_for(model, capability).stream(capability, item, trace)

    def vad_stream(self, model: str, options: VADStreamOptions) -> VADStream:
        """A live VAD stream on ``model`` (checked now); enter it with ``async with``."""
        return VADStream(self.resolve_for(model, Capability.VAD), options)

    async def synthesize_in_voice(self, tts_model: str, item: TTSInput, target: SpeakerReference,
                                  trace: RequestTrace | None = None) -> VCOutput:
        """Cloning for any TTS model: synthesize with the model's own voice, then convert it toward
        ``target`` with the configured VC model. Each stage is its own scheduled request."""
        vc_model = self._conversion_model()
        speech: TTSOutput = await self.submit(tts_model, Capability.TTS, item, trace)
        audio = await asyncio.to_thread(resample, speech.audio, speech.sample_rate, 16000)
        return await self.submit(vc_model, Capability.VC, VCInput(audio=audio, target=target))

    # --- lifetimes ----------------------------------------------------------------------------

    async def reap(self, now: float | None = None) -> list[str]:
        """Unload loaded, idle models whose TTL has passed. Returns the ids unloaded."""
        now = self.clock() if now is None else now
        expired = []
        for dep in self.deployments.values():
            ttl = dep.config.ttl_s
            idle = dep.idle_for(now)
            if ttl >= 0 and idle is not None and idle >= ttl:
                expired.append(dep)
        for dep in expired:
            await dep.unload(f"idle for {dep.config.ttl_s} s")
        return [d.id for d in expired]

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval_s)
            try:
                await self.reap()
            except Exception:
                logger.exception("idle-model reaper failed")

    async def _make_room(self, loading: Deployment) -> None:
        """Before a load: evict least-recently-used idle models beyond ``max_loaded_models``."""
        limit = self.settings.max_loaded_models
        if limit is None:
            return
        loaded = [d for d in self.deployments.values() if d.loaded and d is not loading]
        excess = len(loaded) + 1 - limit
        if excess <= 0:
            return
        idle = sorted((d for d in loaded if d.active == 0), key=lambda d: d.last_used)
        for dep in idle[:excess]:
            await dep.unload(f"least recently used; max_loaded_models={limit}")
        if len(idle) < excess:
            logger.warning("max_loaded_models={} exceeded: the other loaded models are busy", limit)
