"""AsyncEngine: resolves a model name (id or alias) to its deployment, checks the capability,
and submits the typed request to that model's scheduler, for one result or as a stream. Knows
nothing about HTTP.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, AsyncIterator

from loguru import logger

from speechengine.capabilities import Capability, TTSInput, TTSOutput
from speechengine.config import Settings
from speechengine.engine.deployment import Deployment
from speechengine.errors import InvalidRequestError, ModelNotFoundError, UnsupportedCapabilityError
from speechengine.sentences import split_text


class AsyncEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deployments: dict[str, Deployment] = {}
        self._names: dict[str, Deployment] = {}
        for cfg in settings.models:
            dep = Deployment(cfg, settings.cache_dir)
            self.deployments[cfg.id] = dep
            for name in (cfg.id, *cfg.aliases):
                self._names[name] = dep

    async def start(self) -> None:
        """Load the models marked preload, one at a time (bounded memory and CPU at start)."""
        for dep in self.deployments.values():
            if dep.config.preload:
                await dep.ensure_loaded()
        logger.info("engine ready: {} model(s) configured", len(self.deployments))

    async def stop(self) -> None:
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

    async def submit(self, model: str, capability: Capability, item: object) -> object:
        return await self.resolve_for(model, capability).submit(capability, item)

    async def synthesize_stream(self, model: str, item: TTSInput) -> AsyncIterator[TTSOutput]:
        """Validate, then return the audio of ``item`` piece by piece (sentences, in order), each piece
        its own scheduler unit. Joined, the pieces are the whole synthesis."""
        dep = self.resolve_for(model, Capability.TTS)
        pieces = split_text(item.text)
        if not pieces:
            raise InvalidRequestError("'input' has no text to speak", param="input")
        return await dep.submit_each(Capability.TTS, [replace(item, text=piece) for piece in pieces])

    async def stream(self, model: str, capability: Capability, item: object) -> AsyncIterator[Any]:
        """Validate, then return the model's partial outputs for ``item`` as they are produced."""
        return await self.resolve_for(model, capability).stream(capability, item)
