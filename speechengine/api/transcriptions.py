"""POST /v1/audio/transcriptions and /v1/audio/translations (multipart, as the OpenAI SDK sends them)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from speechengine.api.deps import get_engine, get_settings, log_content, off_loop, read_form, read_upload, require_api_key, track
from speechengine.api.errors import parse_model
from speechengine.api.transcript_formats import render
from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, STTInput, STTOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
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


async def _run(request: Request, engine: AsyncEngine, settings: Settings, form: _STTForm, task: str,
               language: str | None, granularities: set[str]) -> Response:
    dep = engine.resolve_for(form.model, Capability.STT)
    trace = track(request, dep)
    data = await read_upload(form.file, settings)
    audio = await off_loop(decode_audio, data, 16000)
    item = STTInput(
        audio=audio, task=task, language=language, prompt=form.prompt, temperature=form.temperature,
        word_timestamps="word" in granularities and form.response_format == "verbose_json",
    )
    result: STTOutput = await dep.submit(Capability.STT, item, trace)
    log_content(request, "transcript", result.text)
    return render(result, form.response_format, task, granularities)


@router.post("/v1/audio/transcriptions", tags=["audio"])
async def create_transcription(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> Response:
    form: TranscriptionForm = parse_model(TranscriptionForm, await read_form(request))
    if form.stream:
        raise InvalidRequestError("stream=true is not supported yet; omit 'stream'", param="stream")
    return await _run(request, engine, settings, form, "transcribe", form.language, set(form.timestamp_granularities))


@router.post("/v1/audio/translations", tags=["audio"])
async def create_translation(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> Response:
    form: TranslationForm = parse_model(TranslationForm, await read_form(request))
    return await _run(request, engine, settings, form, "translate", None, {"segment"})
