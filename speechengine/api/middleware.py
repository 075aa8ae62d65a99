"""ASGI middleware: request ids (honouring X-Request-ID), the upload size limit (413, checked on
Content-Length before any body is read), per-request metrics, and one log line per request with
its model, batch size, queue wait, inference time and status. No request content is logged."""

from __future__ import annotations

import json
import time
import uuid

from loguru import logger

from speechengine.errors import PayloadTooLargeError
from speechengine.metrics import Metrics

_QUIET = {"/health", "/metrics"}  # probes: counted, logged at debug level only


class RequestContextMiddleware:
    def __init__(self, app, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        seen = {"status": 0, "ttfb": None}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-request-id", request_id.encode("latin-1"))]
            elif message["type"] == "http.response.body" and seen["ttfb"] is None and message.get("body"):
                seen["ttfb"] = time.perf_counter() - started
            await send(message)

        length = headers.get(b"content-length")
        try:
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                err = PayloadTooLargeError(f"request body is larger than {self.max_body_bytes / 2**20:g} MB")
                await send_with_id({"type": "http.response.start", "status": err.status,
                                    "headers": [(b"content-type", b"application/json")]})
                await send_with_id({"type": "http.response.body", "body": json.dumps(err.to_body()).encode()})
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, state, request_id, seen, time.perf_counter() - started)

    def _record(self, scope, state: dict, request_id: str, seen: dict, elapsed: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        model = state.get("model", "")
        status = seen["status"] or 499  # the client went away before any response
        self.metrics.http_request(endpoint, model, status, elapsed, seen["ttfb"])
        trace = state.get("trace")
        fields = {"request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status,
                  "model": model or None, "latency_ms": round(elapsed * 1000, 1)}
        if trace is not None and trace.batch_size:
            fields.update(batch_size=trace.batch_size, queue_wait_ms=round(trace.queue_wait_s * 1000, 1),
                          inference_ms=round(trace.run_s * 1000, 1), audio_s=round(trace.audio_s, 3))
        text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and k not in ("method", "path"))
        level = "DEBUG" if scope["path"] in _QUIET and status < 400 else "INFO"
        logger.bind(**fields).log(level, "{} {} {}", scope["method"], scope["path"], text)
