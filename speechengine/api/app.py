"""The FastAPI app factory. App state (settings, engine, metrics, keys) is built here and in the
lifespan and reaches routes through Depends; nothing lives in module globals."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from loguru import logger

from speechengine import __version__
from speechengine.api import (embeddings, models, ops, restore, speech, transcriptions, vad, vad_stream,
                              voice_conversion, voices)
from speechengine.api.errors import install_error_handlers
from speechengine.api.middleware import RequestContextMiddleware
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.metrics import Metrics
from speechengine.voices import VoiceStore


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()
    api_keys = settings.all_api_keys()  # a bad keys file fails here, before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = AsyncEngine(settings, observer=metrics)
        app.state.engine = engine
        app.state.voice_store = VoiceStore(settings.data_dir / "voices")
        if not api_keys:
            logger.warning("no API keys configured: every endpoint is open to anyone who can reach this port")
        else:
            logger.info("API keys required ({} configured); /health is open, /metrics {}", len(api_keys),
                        "needs a key" if settings.metrics_require_key else "is open")
        try:
            await engine.start()
            yield
        finally:
            await engine.stop()
            app.state.voice_store.close()

    app = FastAPI(
        title="speechengine",
        version=__version__,
        description="Multi-model speech inference server with an OpenAI-compatible API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.api_keys = api_keys
    install_error_handlers(app)
    for module in (speech, transcriptions, vad, vad_stream, embeddings, restore, voice_conversion, voices, models, ops):
        app.include_router(module.router)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=int(settings.max_upload_mb * 2**20) + 2**20,
                       metrics=metrics)
    return app
