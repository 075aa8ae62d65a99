"""Custom voices: POST /v1/audio/voices (what the SDK's ``client.audio.voices.create`` sends),
GET /v1/audio/voices (custom voices, then each TTS model's built-in voices), DELETE
/v1/audio/voices/{id} (``client.audio.voices.delete``). Consent is stored, not checked."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from speechengine.api.deps import (get_engine, get_settings, get_voice_store, off_loop, read_form, read_upload,
                                   require_api_key)
from speechengine.api.errors import parse_model
from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, VADInput, VADOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.errors import InvalidRequestError, PayloadTooLargeError
from speechengine.voices import VoiceStore

router = APIRouter(dependencies=[Depends(require_api_key)])

SILENCE_DBFS = -50.0  # a sample whose loudest 30 ms stays below this holds no speech


class VoiceCreateForm(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    name: str = Field(min_length=1, max_length=256)
    audio_sample: Any
    consent: str = Field(min_length=1, max_length=256)
    type: Literal["audio_sample"] = "audio_sample"


def loudest_frame_dbfs(audio: np.ndarray, rate: int = 16000) -> float:
    hop = rate * 30 // 1000
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop) if len(audio) >= hop else audio.reshape(1, -1)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max()
    return float(20 * np.log10(rms + 1e-12))


async def _speech_seconds(engine: AsyncEngine, settings: Settings, audio: np.ndarray) -> float:
    """Seconds of speech in a sample: the configured VAD model's count, or, with none, the length."""
    vad = settings.sample_vad_model()
    if vad is None:
        return len(audio) / 16000
    out: VADOutput = await engine.submit(vad, Capability.VAD, VADInput(audio=audio))
    return out.speech_duration


@router.post("/v1/audio/voices", tags=["voices"])
async def create_voice(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings),
    store: VoiceStore = Depends(get_voice_store),
) -> dict:
    raw = await read_form(request)
    if raw.get("type") == "prompt":
        raise InvalidRequestError("voices from text prompts are not supported; send an audio_sample", param="type")
    form: VoiceCreateForm = parse_model(VoiceCreateForm, raw)
    limits = settings.voices
    data = await read_upload(form.audio_sample, settings, param="audio_sample")
    if len(data) > limits.max_sample_mb * 2**20:
        raise PayloadTooLargeError(f"'audio_sample' is larger than {limits.max_sample_mb:g} MB", param="audio_sample")
    audio = await off_loop(lambda: decode_audio(data, 16000, param="audio_sample"))
    duration = len(audio) / 16000
    if duration > limits.max_sample_s:
        raise InvalidRequestError(f"'audio_sample' is {duration:.1f} s long; the limit is {limits.max_sample_s:g} s",
                                  param="audio_sample")
    if loudest_frame_dbfs(audio) < SILENCE_DBFS:
        raise InvalidRequestError("'audio_sample' is silent", param="audio_sample", code="no_speech")
    speech = await _speech_seconds(engine, settings, audio)
    if speech < limits.min_speech_s:
        raise InvalidRequestError(f"'audio_sample' holds {speech:.1f} s of speech; at least "
                                  f"{limits.min_speech_s:g} s is needed", param="audio_sample", code="no_speech")
    voice = await off_loop(store.create, form.name, form.consent, data, audio)
    return voice.to_body()


@router.get("/v1/audio/voices", tags=["voices"])
async def list_voices(engine: AsyncEngine = Depends(get_engine), store: VoiceStore = Depends(get_voice_store)) -> dict:
    data = [v.to_body() for v in await off_loop(store.list)]
    for dep in engine.deployments.values():
        if Capability.TTS not in dep.capabilities:
            continue
        voices = dep.info.voices if dep.info else ()
        for name in voices:
            aliases = sorted(a for a, v in dep.config.voices.items() if v == name)
            data.append({"id": name, "object": "audio.voice", "name": name, "type": "builtin", "model": dep.id,
                         "aliases": aliases})
    return {"object": "list", "data": data}


@router.delete("/v1/audio/voices/{voice_id}", tags=["voices"])
async def delete_voice(voice_id: str, store: VoiceStore = Depends(get_voice_store)) -> dict:
    await off_loop(store.delete, voice_id)
    return {"id": voice_id, "object": "audio.voice.deleted", "deleted": True}
