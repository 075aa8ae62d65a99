"""GET /v1/models, GET /v1/models/{id} (OpenAI's shape, extended) and GET /health."""

from __future__ import annotations

from dataclasses import asdict

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


@router.get("/v1/models/{model_id:path}", tags=["models"], dependencies=[Depends(require_api_key)])
async def get_model(model_id: str, engine: AsyncEngine = Depends(get_engine)) -> dict:
    return describe(engine.resolve(model_id))


@router.get("/health", tags=["ops"])
async def health(engine: AsyncEngine = Depends(get_engine)) -> dict:
    deps = engine.deployments.values()
    return {
        "status": "ok",
        "models": {d.id: d.status.value for d in deps},
        "executors": {d.id: {"kind": d.executor.kind, "replicas": [asdict(r) for r in d.executor.health()]}
                      for d in deps},
    }
