"""Dependencies that hand app state (built in the lifespan) to routes: no module globals."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable

from fastapi import Request
from loguru import logger
from starlette.datastructures import UploadFile

from speechengine.auth import check_api_key, presented_key
from speechengine.config import Settings
from speechengine.engine import AsyncEngine, Deployment
from speechengine.errors import InvalidRequestError, PayloadTooLargeError
from speechengine.scheduler import RequestTrace
from speechengine.voices import VoiceStore

_OBJECT_FIELD = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<key>[^\[\]]+)\]$")


def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_api_key(request: Request) -> None:
    """When keys are configured, every route that depends on this needs one of them."""
    check_api_key(presented_key(request.headers), request.app.state.api_keys)


def track(request: Request, dep: Deployment) -> RequestTrace:
    """Name the request's model for logs and metrics, and give the scheduler a trace to fill."""
    trace = RequestTrace()
    request.state.model = dep.id
    request.state.trace = trace
    return trace


def log_content(request: Request, label: str, text: str) -> None:
    """Log request or response text only when ``log_content`` is on (debugging; off by default)."""
    if request.app.state.settings.log_content:
        logger.info("{} {}: {!r}", request.state.request_id, label, text)


async def read_form(request: Request) -> dict[str, Any]:
    """Multipart form as a dict, folding the SDK's ``name[]`` arrays and ``name[key]`` objects."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise InvalidRequestError(f"expected a multipart/form-data body, got {content_type or 'no content type'!r}")
    try:
        form = await request.form()
    except Exception as exc:  # malformed multipart or wrong content type
        raise InvalidRequestError(f"expected a multipart/form-data body: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key.endswith("[]"):
            out.setdefault(key[:-2], []).append(value)
        elif m := _OBJECT_FIELD.match(key):
            target = out.setdefault(m["name"], {})
            if isinstance(target, dict):
                target[m["key"]] = value
        else:
            out[key] = value
    return out


async def read_upload(value: Any, settings: Settings, *, param: str = "file") -> bytes:
    """The bytes of an uploaded file field, refusing anything above the configured size."""
    if not isinstance(value, UploadFile):
        raise InvalidRequestError(f"'{param}' must be an uploaded file", param=param)
    limit = int(settings.max_upload_mb * 1024 * 1024)
    if value.size is not None and value.size > limit:
        raise PayloadTooLargeError(f"'{param}' is larger than {settings.max_upload_mb:g} MB", param=param)
    data = await value.read()
    if len(data) > limit:
        raise PayloadTooLargeError(f"'{param}' is larger than {settings.max_upload_mb:g} MB", param=param)
    return data


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking edge work (decode, encode) in a thread, never on the event loop."""
    return await asyncio.to_thread(fn, *args)


def get_voice_store(request: Request) -> VoiceStore:
    return request.app.state.voice_store
