"""AsyncEngine: resolves a model name (id or alias) to its deployment, checks the capability,
and submits the typed request to that model's scheduler. Knows nothing about HTTP.
"""

from __future__ import annotations

from loguru import logger

from speechengine.capabilities import Capability
from speechengine.config import Settings
from speechengine.engine.deployment import Deployment
from speechengine.errors import ModelNotFoundError, UnsupportedCapabilityError


class AsyncEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deployments: dict[str, Deployment] = {}
        self._names: dict[str, Deployment] = {}
        for cfg in settings.models:
            dep = Deployment(cfg, settings.cache_dir, settings.ray)
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
