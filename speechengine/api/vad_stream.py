"""WebSocket /v1/audio/vad/stream: speech events of live audio as soon as they are certain.

The client sends binary frames of 16 kHz mono PCM16 little-endian (any length) and, when done, the
text message ``{"type": "end"}``. The server sends ``speech_started`` and ``speech_stopped`` events
while audio arrives and ``done`` with every segment (the body POST /v1/audio/vad gives the same
audio) after "end". Options are query parameters, or a first text message ``{"type": "start", ...}``
that overrides them. Any error is sent as ``{"type": "error", "error": {OpenAI error body}}``,
then the socket closes with a code that says whose fault it was.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from speechengine.api.errors import parse_model
from speechengine.auth import check_api_key, presented_key
from speechengine.capabilities import VADOutput
from speechengine.engine import AsyncEngine, VADStreamOptions
from speechengine.errors import InvalidAudioError, InvalidRequestError, SpeechEngineError
from speechengine.speech_segments import SpeechEvent, SpeechStarted

router = APIRouter()

# WebSocket close codes (RFC 6455 section 7.4.1).
NORMAL, POLICY, BAD_DATA, SERVER_ERROR, TRY_LATER = 1000, 1008, 1007, 1011, 1013


class VADStreamParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_silence_duration_ms: int = Field(500, ge=0, le=60_000)
    speech_pad_ms: int = Field(30, ge=0, le=10_000)
    min_speech_duration_ms: int = Field(0, ge=0, le=60_000)


def event_body(event: SpeechEvent) -> dict:
    if isinstance(event, SpeechStarted):
        return {"type": "speech_started", "start": event.start}
    return {"type": "speech_stopped", "start": event.start, "end": event.end}


def done_body(out: VADOutput) -> dict:
    return {
        "type": "done",
        "duration": round(out.duration, 3),
        "speech_duration": round(out.speech_duration, 3),
        "segments": [{"start": s.start, "end": s.end} for s in out.segments],
    }


def pcm16(data: bytes) -> np.ndarray:
    if len(data) % 2:
        raise InvalidAudioError(f"audio frames must be 16-bit PCM: got {len(data)} bytes, an odd count")
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


def close_code(exc: SpeechEngineError) -> int:
    if isinstance(exc, InvalidAudioError):
        return BAD_DATA
    if exc.status in (429, 503):
        return TRY_LATER
    return SERVER_ERROR if exc.status >= 500 else POLICY


def text_message(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise InvalidRequestError('text messages must be JSON objects with a "type" ("start" or "end")')
    return message


@router.websocket("/v1/audio/vad/stream")
async def vad_stream(ws: WebSocket) -> None:
    await ws.accept()  # before anything can fail, so that the client reads why it did
    try:
        await serve(ws)
    except WebSocketDisconnect:
        return  # the client left; leaving serve() already released its stream
    except SpeechEngineError as exc:
        if exc.status >= 500:
            logger.error("{} -> {}: {}", ws.url.path, exc.status, exc.message)
        await send_error(ws, exc.to_body(), close_code(exc))
    except Exception as exc:
        logger.opt(exception=exc).error("unhandled error on {}", ws.url.path)
        await send_error(ws, {"error": {"message": f"internal error: {type(exc).__name__}", "type": "server_error",
                                        "param": None, "code": None}}, SERVER_ERROR)


async def send_error(ws: WebSocket, body: dict, code: int) -> None:
    try:
        await ws.send_json({"type": "error", **body})
        await ws.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client is gone already


async def serve(ws: WebSocket) -> None:
    state = ws.app.state
    check_api_key(presented_key(ws.headers), state.api_keys)
    params: dict[str, Any] = dict(ws.query_params)
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is not None:
        first = text_message(message["text"])
        if first["type"] == "start":
            params.update({k: v for k, v in first.items() if k != "type"})
            message = None
    form = parse_model(VADStreamParams, params)
    engine: AsyncEngine = state.engine
    model = form.model or state.settings.sample_vad_model()
    if model is None:
        raise InvalidRequestError("no VAD model is configured; name one in 'model'", param="model")
    options = VADStreamOptions(threshold=form.threshold, min_silence_duration_ms=form.min_silence_duration_ms,
                               speech_pad_ms=form.speech_pad_ms, min_speech_duration_ms=form.min_speech_duration_ms)
    async with engine.vad_stream(model, options) as stream:
        while True:
            if message is None:
                message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                for event in await stream.feed(pcm16(message["bytes"])):
                    await ws.send_json(event_body(event))
            elif text_message(message["text"])["type"] == "end":
                events, out = await stream.finish()
                for event in events:
                    await ws.send_json(event_body(event))
                await ws.send_json(done_body(out))
                logger.info("WebSocket {} model={} audio_s={:.2f} segments={} last_batch_size={}", ws.url.path,
                            stream.dep.id, out.duration, len(out.segments), stream.trace.batch_size)
                break
            else:
                raise InvalidRequestError('after audio starts, the only text message is {"type": "end"}')
            message = None
    await ws.close(NORMAL)
