"""ASGI middleware: request ids, one log line per request, and the upload size limit (413)
checked on Content-Length before any body is read."""

from __future__ import annotations

import json
import time
import uuid

from loguru import logger

from speechengine.errors import PayloadTooLargeError


class RequestContextMiddleware:
    def __init__(self, app, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 0}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            err = PayloadTooLargeError(f"request body is larger than {self.max_body_bytes / 2**20:g} MB")
            body = json.dumps(err.to_body()).encode()
            await send_with_id({"type": "http.response.start", "status": err.status,
                                "headers": [(b"content-type", b"application/json")]})
            await send_with_id({"type": "http.response.body", "body": body})
        else:
            await self.app(scope, receive, send_with_id)
        logger.info(
            "{} {} {} {:.0f} ms id={}", scope["method"], scope["path"], status["code"],
            (time.perf_counter() - started) * 1000, request_id,
        )
