"""POST /v1/audio/speech: OpenAI's text-to-speech endpoint, streamed by default.

The text is synthesized sentence by sentence (engine.synthesize_stream) and each piece is sent as
soon as it is encoded: chunked audio (``stream_format=audio``) or SSE deltas (``sse``). With our
extra field ``stream: false`` the same audio comes as one complete file instead. See
docs/streaming.md.
"""

from __future__ import annotations

import base64
import math
from contextlib import aclosing
from typing import AsyncIterator, Literal

import anyio
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from speechengine.api.deps import get_engine, get_voice_store, log_content, off_loop, require_api_key, track
from speechengine.api.streaming import SSE_MEDIA_TYPE, sse_event, stream_response
from speechengine.audio import encode_audio, media_type, resample
from speechengine.audio.encode import output_rate
from speechengine.audio.joins import fade_edges
from speechengine.audio.stream_encode import StreamEncoder
from speechengine.capabilities import Capability, TTSInput, TTSOutput, VCOutput
from speechengine.engine import AsyncEngine, Deployment
from speechengine.errors import InvalidRequestError
from speechengine.voices import VoiceStore

router = APIRouter(dependencies=[Depends(require_api_key)])

Audio = TTSOutput | VCOutput  # a piece: synthesized, or synthesized then converted to a custom voice


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
    # Ours (send it with extra_body): false waits for the whole synthesis and returns one complete
    # file with exact sizes in its headers; sse is always streamed.
    stream: bool = True


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


def _usage(text: str, seconds: float) -> dict:
    # No tokenizer here: characters in, audio seconds (rounded up) out, as the nearest honest count.
    input_tokens, output_tokens = len(text), math.ceil(seconds)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


def _joinable(piece: Audio, rate: int) -> np.ndarray:
    """A piece at ``rate`` with faded edges, ready to be appended to the ones before it."""
    return fade_edges(resample(piece.audio, piece.sample_rate, rate), rate)


class _EncodedSpeech:
    """The pieces of one synthesis, joined without clicks and encoded as they come, in one format."""

    def __init__(self, first: Audio, rest: AsyncIterator[Audio], fmt: str) -> None:
        self.first, self.rest = first, rest
        self.encoder = StreamEncoder(fmt, first.sample_rate)
        self.seconds = 0.0

    def _encode(self, piece: Audio) -> bytes:
        audio = _joinable(piece, self.encoder.sample_rate)
        self.seconds += len(audio) / self.encoder.sample_rate
        return self.encoder.encode(audio)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            piece: Audio | None = self.first
            while piece is not None:
                data = await off_loop(self._encode, piece)
                if data:
                    yield data
                piece = await anext(self.rest, None)
            tail = await off_loop(self.encoder.flush)
            if tail:  # never an empty chunk: in chunked encoding that would read as the end
                yield tail
        finally:
            await self.rest.aclose()
            with anyio.CancelScope(shield=True):  # waits for a chunk still encoding in its thread
                await off_loop(self.encoder.close)

    async def sse_events(self, text: str) -> AsyncIterator[bytes]:
        async with aclosing(self.chunks()) as chunks:
            async for chunk in chunks:
                yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
        yield sse_event({"type": "speech.audio.done", "usage": _usage(text, self.seconds)})


async def _whole_file(first: Audio, rest: AsyncIterator[Audio], fmt: str) -> bytes:
    """The same joined audio as the stream, as one complete file (exact sizes in its headers)."""
    async with aclosing(rest):
        pieces = [first] + [piece async for piece in rest]

    def encode() -> bytes:
        rate = first.sample_rate
        return encode_audio(np.concatenate([_joinable(p, rate) for p in pieces]), rate, fmt)

    return await off_loop(encode)


@router.post("/v1/audio/speech", tags=["audio"], response_class=Response)
async def create_speech(req: SpeechRequest, request: Request, engine: AsyncEngine = Depends(get_engine),
                        store: VoiceStore = Depends(get_voice_store)) -> Response:
    dep = engine.resolve_for(req.model, Capability.TTS)
    trace = track(request, dep)
    log_content(request, "input", req.input)
    if isinstance(req.voice, VoiceRef):
        # A custom voice: the model's default voice, each piece converted toward the saved sample.
        target = await off_loop(store.reference, req.voice.id)
        info = await dep.ensure_loaded()
        item = TTSInput(text=req.input, voice=info.default_voice or info.voices[0], speed=req.speed,
                        instructions=req.instructions)
        pieces = await engine.synthesize_stream(dep.id, item, trace, target=target)
    else:
        voice = await resolve_voice(dep, req.voice)
        item = TTSInput(text=req.input, voice=voice, speed=req.speed, instructions=req.instructions)
        pieces = await engine.synthesize_stream(dep.id, item, trace)
    try:
        first = await anext(pieces)  # its rate goes into the headers; its failure is a normal error
    except BaseException:
        await pieces.aclose()
        raise
    headers = {"X-Sample-Rate": str(output_rate(req.response_format, first.sample_rate))}
    if req.stream_format == "sse":
        speech = _EncodedSpeech(first, pieces, req.response_format)
        return await stream_response(request, speech.sse_events(req.input), media_type=SSE_MEDIA_TYPE,
                                     headers=headers, sse=True)
    if not req.stream:
        body = await _whole_file(first, pieces, req.response_format)
        return Response(body, media_type=media_type(req.response_format), headers=headers)
    speech = _EncodedSpeech(first, pieces, req.response_format)
    return await stream_response(request, speech.chunks(), media_type=media_type(req.response_format),
                                 headers=headers)
