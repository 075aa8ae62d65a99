"""POST /v1/audio/speech: OpenAI's text-to-speech endpoint."""

from __future__ import annotations

import base64
import json
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from speechengine.api.deps import get_engine, get_voice_store, log_content, off_loop, require_api_key, track
from speechengine.audio import encode_audio, media_type
from speechengine.audio.encode import output_rate
from speechengine.capabilities import Capability, TTSInput, TTSOutput, VCOutput
from speechengine.engine import AsyncEngine, Deployment
from speechengine.errors import InvalidRequestError
from speechengine.voices import VoiceStore

router = APIRouter(dependencies=[Depends(require_api_key)])


class VoiceRef(BaseModel):
    id: str


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDK sends extras through extra_body

    model: str
    input: str = Field(min_length=1, max_length=4096)
    voice: str | VoiceRef
    instructions: str | None = Field(None, max_length=4096)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


async def resolve_voice(dep: Deployment, voice: str) -> str:
    """A model voice from a request voice: the model's own name, or a configured alias (OpenAI's)."""
    info = await dep.ensure_loaded()
    by_lower = {v.lower(): v for v in info.voices}
    if voice.lower() in by_lower:
        return by_lower[voice.lower()]
    aliases = {k.lower(): v for k, v in dep.config.voices.items()}
    if voice.lower() in aliases:
        return aliases[voice.lower()]
    names = sorted({*info.voices, *dep.config.voices})
    raise InvalidRequestError(f"voice {voice!r} is not available for this model; voices: {', '.join(names)}",
                              param="voice")


def _usage(text: str, audio: TTSOutput | VCOutput) -> dict:
    # No tokenizer here: characters in, audio seconds (rounded up) out, as the nearest honest count.
    input_tokens, output_tokens = len(text), int(audio.duration + 0.999)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


@router.post("/v1/audio/speech", tags=["audio"], response_class=Response)
async def create_speech(req: SpeechRequest, request: Request, engine: AsyncEngine = Depends(get_engine),
                        store: VoiceStore = Depends(get_voice_store)) -> Response:
    dep = engine.resolve_for(req.model, Capability.TTS)
    trace = track(request, dep)
    log_content(request, "input", req.input)
    if isinstance(req.voice, VoiceRef):
        # A custom voice: the model's default voice, converted toward the saved sample.
        target = await off_loop(store.reference, req.voice.id)
        info = await dep.ensure_loaded()
        item = TTSInput(text=req.input, voice=info.default_voice or info.voices[0], speed=req.speed,
                        instructions=req.instructions)
        result: TTSOutput | VCOutput = await engine.synthesize_in_voice(dep.id, item, target, trace)
    else:
        voice = await resolve_voice(dep, req.voice)
        item = TTSInput(text=req.input, voice=voice, speed=req.speed, instructions=req.instructions)
        result = await dep.submit(Capability.TTS, item, trace)
    body = await off_loop(encode_audio, result.audio, result.sample_rate, req.response_format)
    rate = output_rate(req.response_format, result.sample_rate)
    if req.stream_format == "sse":
        events = [
            {"type": "speech.audio.delta", "audio": base64.b64encode(body).decode()},
            {"type": "speech.audio.done", "usage": _usage(req.input, result)},
        ]
        payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
        return StreamingResponse(iter([payload]), media_type="text/event-stream",
                                 headers={"X-Sample-Rate": str(rate)})
    return Response(body, media_type=media_type(req.response_format), headers={"X-Sample-Rate": str(rate)})
