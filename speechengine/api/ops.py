"""GET /health (never needs a key) and GET /metrics (Prometheus text; keyed if configured)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from speechengine.api.deps import get_engine
from speechengine.auth import check_api_key, presented_key
from speechengine.engine import AsyncEngine
from speechengine.metrics import CONTENT_TYPE

router = APIRouter(tags=["ops"])


@router.get("/health")
async def health(engine: AsyncEngine = Depends(get_engine)) -> dict:
    deps = engine.deployments.values()
    return {
        "status": "ok",
        "models": {d.id: d.status.value for d in deps},
        "executors": {d.id: {"kind": d.executor.kind, "replicas": [asdict(r) for r in d.executor.health()]}
                      for d in deps},
        # this process's budget; replica processes (process/ray executors) have their own
        "threads": {**asdict(engine.thread_budget.usage()), "models": engine.model_threads()},
    }


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    if request.app.state.settings.metrics_require_key:
        check_api_key(presented_key(request.headers), request.app.state.api_keys)
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
