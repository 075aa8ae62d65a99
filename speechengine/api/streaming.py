"""Streamed HTTP responses: chunked audio and server-sent events (SSE).

Everything that can be checked is checked before the first byte: routes validate and create the
body iterator, and ``stream_response`` runs it up to its first chunk before any header goes out,
so bad input, a missing model or a failing first piece are ordinary error responses. A failure
after that is logged with the request id and ends the stream: with an ``error`` event for SSE,
by aborting the connection for audio (a chunked body that never ends tells the client the audio
is incomplete; a clean end would pass a truncated file off as a whole one).
"""

from __future__ import annotations

import json
from typing import AsyncIterator

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from loguru import logger

from speechengine.errors import SpeechEngineError

SSE_MEDIA_TYPE = "text/event-stream"


def sse_event(event: dict) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


class _StreamAborted(Exception):
    """Ends an audio stream that failed after it started (already logged with the request id)."""


def _error_body(exc: BaseException) -> dict:
    if isinstance(exc, SpeechEngineError):
        return exc.to_body()["error"]
    return {"message": f"internal error: {type(exc).__name__}", "type": "server_error", "param": None, "code": None}


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that closes its body iterator however the response ends (the client
    gone included) right away, instead of leaving it to garbage collection, and that ends an
    aborted body by returning without its last message: the ASGI server then drops the connection
    (one log line, instead of the tracebacks a raised exception would print after ours)."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except _StreamAborted:
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


async def stream_response(request: Request, chunks: AsyncIterator[bytes], *, media_type: str,
                          headers: dict[str, str] | None = None, sse: bool = False) -> StreamingResponse:
    """Run ``chunks`` to its first chunk here (errors so far are normal responses), then stream it."""
    request_id = getattr(request.state, "request_id", None)
    try:
        first = await anext(chunks, b"")
    except BaseException:
        await chunks.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk
        except Exception as exc:
            log = logger.opt(exception=exc) if not isinstance(exc, SpeechEngineError) else logger
            log.error("{} {} id={}: stream failed after it started: {}", request.method, request.url.path,
                      request_id, exc)
            if not sse:  # the client must see an incomplete body, not a short file that looks whole
                raise _StreamAborted() from exc
            yield sse_event({"type": "error", "error": _error_body(exc)})
        finally:
            await chunks.aclose()

    if sse:
        headers = {**(headers or {}), "Cache-Control": "no-cache"}
    return ClosingStreamingResponse(body(), media_type=media_type, headers=headers)
