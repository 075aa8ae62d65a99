"""Unit tests of api/streaming.py: how a stream that fails ends, under a real uvicorn.

No real model fails on demand halfway through a response, so the body here is a stub iterator
that fails after its first chunk; everything around it (the helper, the request-id middleware,
uvicorn, the client) is real.
"""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request
from loguru import logger

from speechengine.api.errors import install_error_handlers
from speechengine.api.middleware import RequestContextMiddleware
from speechengine.api.streaming import SSE_MEDIA_TYPE, sse_event, stream_response
from speechengine.errors import InferenceError, InvalidRequestError
from speechengine.metrics import Metrics
from tests.live_server import LiveServer


async def body(fail_at: int | None, *, sse: bool):
    for index in range(3):
        if index == fail_at:
            raise InferenceError("the model broke on piece 2")
        yield sse_event({"type": "part", "index": index}) if sse else b"x" * 1000


def app() -> FastAPI:
    api = FastAPI()
    install_error_handlers(api)

    @api.get("/audio")
    async def audio(request: Request, fail_at: int | None = None):
        return await stream_response(request, body(fail_at, sse=False), media_type="audio/pcm")

    @api.get("/sse")
    async def events(request: Request, fail_at: int | None = None):
        return await stream_response(request, body(fail_at, sse=True), media_type=SSE_MEDIA_TYPE, sse=True)

    @api.get("/early")
    async def early(request: Request):
        async def refused():
            raise InvalidRequestError("bad voice", param="voice")
            yield b""  # pragma: no cover - makes this an async generator

        return await stream_response(request, refused(), media_type="audio/pcm")

    api.add_middleware(RequestContextMiddleware, max_body_bytes=2**20, metrics=Metrics())
    return api


@pytest.fixture(scope="module")
def live():
    with LiveServer(app()) as srv:
        yield srv


@pytest.fixture
def logs():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="ERROR")
    yield lines
    logger.remove(sink)


def test_sse_failure_after_the_first_byte_ends_with_an_error_event(live, logs):
    with httpx.stream("GET", live.base_url + "/sse", params={"fail_at": 1}, headers={"x-request-id": "req-sse-1"}) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[0] == {"type": "part", "index": 0}
    assert events[-1] == {"type": "error", "error": {"message": "the model broke on piece 2", "type": "server_error",
                                                     "param": None, "code": "inference_failed"}}
    assert len(events) == 2  # nothing after the error
    assert any("req-sse-1" in line and "the model broke" in line for line in logs)


def test_audio_failure_after_the_first_byte_aborts_the_connection(live, logs):
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):  # the chunked body never ends: the client knows
        with httpx.stream("GET", live.base_url + "/audio", params={"fail_at": 1},
                          headers={"x-request-id": "req-audio-1"}) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                received += chunk
    assert received == b"x" * 1000
    assert any("req-audio-1" in line and "the model broke" in line for line in logs)


def test_failure_before_the_first_byte_is_a_normal_error_response(live):
    r = httpx.get(live.base_url + "/early")
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice"
    r = httpx.get(live.base_url + "/sse", params={"fail_at": 0})
    assert r.status_code == 500 and r.json()["error"]["code"] == "inference_failed"


def test_streams_without_failure_end_cleanly(live):
    r = httpx.get(live.base_url + "/audio")
    assert r.status_code == 200 and r.content == b"x" * 3000
    r = httpx.get(live.base_url + "/sse")
    assert r.headers["cache-control"] == "no-cache"
    assert [json.loads(line[6:])["index"] for line in r.text.splitlines() if line] == [0, 1, 2]
