"""POST /v1/audio/vad: speech segments of an uploaded file (our endpoint, OpenAI conventions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from speechengine.api.deps import get_engine, get_settings, off_loop, read_form, read_upload, require_api_key, track
from speechengine.api.errors import parse_model
from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, VADInput, VADOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine

router = APIRouter(dependencies=[Depends(require_api_key)])


class VADForm(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    file: Any
    model: str
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_silence_duration_ms: int = Field(500, ge=0, le=60_000)
    speech_pad_ms: int = Field(30, ge=0, le=10_000)
    min_speech_duration_ms: int = Field(0, ge=0, le=60_000)


@router.post("/v1/audio/vad", tags=["audio"])
async def detect_speech(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> dict:
    form: VADForm = parse_model(VADForm, await read_form(request))
    dep = engine.resolve_for(form.model, Capability.VAD)
    trace = track(request, dep)
    audio = await off_loop(decode_audio, await read_upload(form.file, settings), 16000)
    item = VADInput(
        audio=audio, threshold=form.threshold, min_silence_duration_ms=form.min_silence_duration_ms,
        speech_pad_ms=form.speech_pad_ms, min_speech_duration_ms=form.min_speech_duration_ms,
    )
    out: VADOutput = await dep.submit(Capability.VAD, item, trace)
    return {
        "duration": round(out.duration, 3),
        "speech_duration": round(out.speech_duration, 3),
        "segments": [{"start": s.start, "end": s.end} for s in out.segments],
    }
