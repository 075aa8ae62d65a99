"""The FastAPI app factory. App state (settings, engine) is built in the lifespan and reaches
routes through Depends; nothing lives in module globals."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from loguru import logger

from speechengine import __version__
from speechengine.api import models, speech, transcriptions, vad
from speechengine.api.errors import install_error_handlers
from speechengine.api.middleware import RequestContextMiddleware
from speechengine.config import Settings
from speechengine.engine import AsyncEngine


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = AsyncEngine(settings)
        app.state.settings = settings
        app.state.engine = engine
        if not settings.api_keys:
            logger.warning("no API keys configured: every endpoint is open to anyone who can reach this port")
        try:
            await engine.start()
            yield
        finally:
            await engine.stop()

    app = FastAPI(
        title="speechengine",
        version=__version__,
        description="Multi-model speech inference server with an OpenAI-compatible API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (speech, transcriptions, vad, models):
        app.include_router(module.router)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=int(settings.max_upload_mb * 2**20) + 2**20)
    return app
