"""POST /v1/audio/voice-conversion: source speech + a target speaker (an uploaded ``reference``
or a saved ``voice`` id) -> the source's words in the target's voice, in any audio format."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from speechengine.api.deps import (get_engine, get_settings, get_voice_store, off_loop, read_form, read_upload,
                                   require_api_key, track)
from speechengine.api.errors import parse_model
from speechengine.audio import AUDIO_FORMATS, decode_audio, encode_audio, media_type
from speechengine.audio.encode import output_rate
from speechengine.capabilities import Capability, SpeakerReference, VCInput, VCOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.errors import InvalidRequestError
from speechengine.voices import VoiceStore

router = APIRouter(dependencies=[Depends(require_api_key)])


class VoiceConversionForm(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    file: Any
    model: str
    reference: Any = None
    voice: str | None = None
    response_format: Literal[AUDIO_FORMATS] = "wav"  # type: ignore[valid-type]
    strength: float | None = Field(None, ge=0.0, le=1.0)


def uploaded_reference(audio) -> SpeakerReference:
    return SpeakerReference(key="sha256:" + hashlib.sha256(audio.tobytes()).hexdigest(), audio=audio)


@router.post("/v1/audio/voice-conversion", tags=["audio"], response_class=Response)
async def convert_voice(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings),
    store: VoiceStore = Depends(get_voice_store),
) -> Response:
    form: VoiceConversionForm = parse_model(VoiceConversionForm, await read_form(request))
    dep = engine.resolve_for(form.model, Capability.VC)
    trace = track(request, dep)
    if (form.reference is None) == (form.voice is None):
        raise InvalidRequestError("give exactly one of 'reference' (target speaker audio) or 'voice' "
                                  "(a saved voice id)", param="reference")
    source = await off_loop(decode_audio, await read_upload(form.file, settings), 16000)
    if form.voice is not None:
        target = await off_loop(store.reference, form.voice)
    else:
        data = await read_upload(form.reference, settings, param="reference")
        audio = await off_loop(lambda: decode_audio(data, 16000, param="reference"))
        target = uploaded_reference(audio)
    result: VCOutput = await dep.submit(Capability.VC, VCInput(audio=source, target=target, strength=form.strength),
                                        trace)
    body = await off_loop(encode_audio, result.audio, result.sample_rate, form.response_format)
    rate = output_rate(form.response_format, result.sample_rate)
    return Response(body, media_type=media_type(form.response_format), headers={"X-Sample-Rate": str(rate)})
