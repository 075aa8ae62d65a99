"""Dependencies that hand app state (built in the lifespan) to routes: no module globals."""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Any, Callable

from fastapi import Request
from starlette.datastructures import UploadFile

from speechengine.config import Settings
from speechengine.engine import AsyncEngine
from speechengine.errors import AuthenticationError, InvalidRequestError, PayloadTooLargeError

_OBJECT_FIELD = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<key>[^\[\]]+)\]$")


def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_api_key(request: Request) -> None:
    """When keys are configured, accept ``Authorization: Bearer <key>`` or ``Api-Key: <key>``."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    given = request.headers.get("api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    if not given:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
    # compare against every key (no early exit) in constant time
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given.encode(), key.encode())
    if not ok:
        raise AuthenticationError("incorrect API key provided")


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
