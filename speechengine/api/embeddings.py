"""POST /v1/audio/embeddings: one speaker embedding per uploaded file (our endpoint, shaped like
OpenAI's /v1/embeddings).

Several ``file`` fields (or ``file[]``) may come in one request; each file is its own engine
request, so the files of one request and those of concurrent requests share batches.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict

from speechengine.api.deps import get_engine, get_settings, off_loop, read_form, read_upload, require_api_key, track
from speechengine.api.errors import parse_model
from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, EmbedInput, EmbedOutput
from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.errors import InvalidAudioError, InvalidRequestError

router = APIRouter(dependencies=[Depends(require_api_key)])

MAX_FILES = 32
SILENCE_PEAK = 1e-4  # below this peak a file holds no voice to embed


class EmbeddingsForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    encoding_format: Literal["float", "base64"] = "float"


async def _uploads(request: Request, settings: Settings) -> list[bytes]:
    form = await request.form()  # parsed once by read_form; starlette caches it
    files = [v for k, v in form.multi_items() if k in ("file", "file[]")]
    if not files:
        raise InvalidRequestError("file: is required (one or more audio files)", param="file")
    if len(files) > MAX_FILES:
        raise InvalidRequestError(f"at most {MAX_FILES} files per request, got {len(files)}", param="file")
    return [await read_upload(f, settings) for f in files]


def _decode(data: bytes, rate: int) -> np.ndarray:
    audio = decode_audio(data, rate)
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise InvalidAudioError("the uploaded file is silent: there is no voice to embed", param="file")
    return audio


def _encode(vec: np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(vec.astype("<f4").tobytes()).decode()
    return [float(x) for x in vec]


@router.post("/v1/audio/embeddings", tags=["audio"])
async def create_embeddings(
    request: Request, engine: AsyncEngine = Depends(get_engine), settings: Settings = Depends(get_settings)
) -> dict[str, Any]:
    form: EmbeddingsForm = parse_model(EmbeddingsForm, await read_form(request))
    dep = engine.resolve_for(form.model, Capability.EMBED)
    trace = track(request, dep)
    uploads = await _uploads(request, settings)
    rate = (await dep.ensure_loaded()).sample_rate or 16000
    audios = [await off_loop(_decode, data, rate) for data in uploads]
    items = [EmbedInput(audio=a, sample_rate=rate) for a in audios]
    # The first file carries the request's trace (logs, metrics); the others their own.
    outputs: list[EmbedOutput] = await asyncio.gather(
        *(dep.submit(Capability.EMBED, item, trace if i == 0 else None) for i, item in enumerate(items))
    )
    return {
        "object": "list",
        "model": dep.id,
        "data": [{"object": "embedding", "index": i, "embedding": _encode(o.embedding, form.encoding_format)}
                 for i, o in enumerate(outputs)],
        "usage": {"seconds": round(sum(item.duration for item in items), 3)},
    }
