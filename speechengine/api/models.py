"""GET /v1/models, GET /v1/models/{id} (OpenAI's shape, extended), POST /v1/models/{id}/load and
/unload."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from speechengine.api.deps import get_engine, require_api_key
from speechengine.capabilities import Capability
from speechengine.engine import AsyncEngine, Deployment

router = APIRouter()


def describe(dep: Deployment) -> dict:
    body: dict = {
        "id": dep.id,
        "object": "model",
        "created": dep.created,
        "owned_by": "speechengine",
        "family": dep.config.family,
        "capabilities": sorted(c.value for c in dep.capabilities),
        "aliases": list(dep.config.aliases),
        "status": dep.status.value,
    }
    info = dep.info
    if Capability.TTS in dep.capabilities:
        body["voices"] = list(info.voices) if info else []
        body["voice_aliases"] = dict(dep.config.voices)
    if Capability.STT in dep.capabilities:
        body["languages"] = list(info.languages) if info else []
        body["tasks"] = list(info.tasks) if info else []
    if info and info.sample_rate:
        body["sample_rate"] = info.sample_rate
    if dep.load_error:
        body["error"] = dep.load_error
    return body


@router.get("/v1/models", tags=["models"], dependencies=[Depends(require_api_key)])
async def list_models(engine: AsyncEngine = Depends(get_engine)) -> dict:
    return {"object": "list", "data": [describe(d) for d in engine.deployments.values()]}


@router.post("/v1/models/{model_id}/load", tags=["models"], dependencies=[Depends(require_api_key)])
async def load_model(model_id: str, engine: AsyncEngine = Depends(get_engine)) -> dict:
    dep = engine.resolve(model_id)
    await dep.ensure_loaded()
    return describe(dep)


@router.post("/v1/models/{model_id}/unload", tags=["models"], dependencies=[Depends(require_api_key)])
async def unload_model(model_id: str, engine: AsyncEngine = Depends(get_engine)) -> dict:
    """Unload once the model's requests in flight are answered (a busy model is never cut off)."""
    dep = engine.resolve(model_id)
    await dep.unload("requested through the API")
    return describe(dep)


@router.get("/v1/models/{model_id:path}", tags=["models"], dependencies=[Depends(require_api_key)])
async def get_model(model_id: str, engine: AsyncEngine = Depends(get_engine)) -> dict:
    return describe(engine.resolve(model_id))
