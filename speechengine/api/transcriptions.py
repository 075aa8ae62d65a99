"""POST /v1/audio/transcriptions and /v1/audio/translations (multipart, as the OpenAI SDK sends them).

Transcriptions with ``stream=true`` answer with SSE: a ``transcript.text.delta`` per segment as it
is decoded, then ``transcript.text.done``.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, AsyncIterator, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from speechengine.api.deps import get_engine, get_settings, log_content, off_loop, read_form, read_upload, require_api_key, track
from speechengine.api.errors import parse_model
from speechengine.api.streaming import SSE_MEDIA_TYPE, sse_event, stream_response
from speechengine.api.transcript_formats import render
from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, Segment, STTInput, STTOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.scheduler import RequestTrace
from speechengine.errors import InvalidRequestError

router = APIRouter(dependencies=[Depends(require_api_key)])


class _STTForm(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    file: Any
    model: str
    prompt: str | None = None
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0)


class TranscriptionForm(_STTForm):
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    timestamp_granularities: list[Literal["word", "segment"]] = ["segment"]
    include: list[str] = []
    stream: bool = False
    chunking_strategy: Any = None

    @field_validator("language", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() or None if isinstance(v, str) else v


class TranslationForm(_STTForm):
    pass


async def _input(request: Request, engine: AsyncEngine, settings: Settings, form: _STTForm, task: str,
                 language: str | None, granularities: set[str]) -> tuple[STTInput, RequestTrace]:
    dep = engine.resolve_for(form.model, Capability.STT)  # a wrong model fails before the upload is decoded
    trace = track(request, dep)
    data = await read_upload(form.file, settings)
    audio = await off_loop(decode_audio, data, 16000)
    item = STTInput(
        audio=audio, task=task, language=language, prompt=form.prompt, temperature=form.temperature,
        word_timestamps="word" in granularities and form.response_format == "verbose_json",
    )
    return item, trace


async def _transcript_events(request: Request, segments: AsyncIterator[Segment],
                             duration: float) -> AsyncIterator[bytes]:
    """One delta per decoded segment; ``done`` carries their concatenation, exactly."""
    text = ""
    async with aclosing(segments):
        async for segment in segments:
            delta = segment.text.rstrip() if text else segment.text.strip()
            if delta:
                text += delta
                yield sse_event({"type": "transcript.text.delta", "delta": delta})
    log_content(request, "transcript", text)
    yield sse_event({"type": "transcript.text.done", "text": text,
                     "usage": {"type": "duration", "seconds": round(duration, 3)}})


@router.post("/v1/audio/transcriptions", tags=["audio"])
async def create_transcription(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> Response:
    form: TranscriptionForm = parse_model(TranscriptionForm, await read_form(request))
    granularities = set(form.timestamp_granularities)
    if form.stream and form.response_format not in ("json", "text"):
        raise InvalidRequestError("stream=true sends transcript.text events; use response_format json or text",
                                  param="response_format")
    item, trace = await _input(request, engine, settings, form, "transcribe", form.language, granularities)
    if form.stream:
        segments = await engine.stream(form.model, Capability.STT, item, trace)
        return await stream_response(request, _transcript_events(request, segments, item.duration),
                                     media_type=SSE_MEDIA_TYPE, sse=True)
    result: STTOutput = await engine.submit(form.model, Capability.STT, item, trace)
    log_content(request, "transcript", result.text)
    return render(result, form.response_format, "transcribe", granularities)


@router.post("/v1/audio/translations", tags=["audio"])
async def create_translation(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> Response:
    form: TranslationForm = parse_model(TranslationForm, await read_form(request))
    item, trace = await _input(request, engine, settings, form, "translate", None, {"segment"})
    result: STTOutput = await engine.submit(form.model, Capability.STT, item, trace)
    log_content(request, "transcript", result.text)
    return render(result, form.response_format, "translate", {"segment"})
