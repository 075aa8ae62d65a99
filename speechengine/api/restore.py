"""POST /v1/audio/restore: the uploaded audio, denoised, in the asked format (our endpoint).

Any container, rate and channel count in; the model works on mono at its own rate, and the answer
comes back mono at the uploaded file's rate with the same number of samples (opus alone is
resampled to 48 kHz when the input's rate is not one Opus supports). The default format is wav:
restoration is about quality, so the default is lossless; ``X-Sample-Rate`` states the rate.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from speechengine.api.deps import get_engine, get_settings, off_loop, read_form, read_upload, require_api_key, track
from speechengine.api.errors import parse_model
from speechengine.audio import decode_audio_with_rate, encode_audio, media_type, resample
from speechengine.audio.encode import output_rate
from speechengine.capabilities import Capability, RestoreInput, RestoreOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine

router = APIRouter(dependencies=[Depends(require_api_key)])


class RestoreForm(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    file: Any
    model: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "wav"


def _to_source_rate(audio: np.ndarray, model_rate: int, source_rate: int, length: int) -> np.ndarray:
    """Back to the upload's rate, with exactly the upload's number of samples."""
    audio = resample(audio, model_rate, source_rate)
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


def _encode(out: RestoreOutput, source_rate: int, length: int, fmt: str) -> bytes:
    return encode_audio(_to_source_rate(out.audio, out.sample_rate, source_rate, length), source_rate, fmt)


@router.post("/v1/audio/restore", tags=["audio"], response_class=Response)
async def restore_audio(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> Response:
    form: RestoreForm = parse_model(RestoreForm, await read_form(request))
    dep = engine.resolve_for(form.model, Capability.RESTORE)
    trace = track(request, dep)
    data = await read_upload(form.file, settings)
    model_rate = (await dep.ensure_loaded()).sample_rate or 48000
    source, source_rate = await off_loop(decode_audio_with_rate, data)
    audio = await off_loop(resample, source, source_rate, model_rate)
    out: RestoreOutput = await dep.submit(Capability.RESTORE, RestoreInput(audio=audio, sample_rate=model_rate), trace)
    body = await off_loop(_encode, out, source_rate, len(source), form.response_format)
    rate = output_rate(form.response_format, source_rate)
    return Response(body, media_type=media_type(form.response_format), headers={"X-Sample-Rate": str(rate)})
