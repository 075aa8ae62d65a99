"""Streamed /v1/audio/transcriptions (stream=true) against the real server and Whisper, through
the openai SDK's event stream and raw SSE."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.audio_utils import fold
from tests.conftest import FIXTURES, JFK_TEXT


def test_sdk_stream_gives_deltas_whose_concatenation_is_the_done_text(client):
    with open(FIXTURES / "jfk.flac", "rb") as f:
        stream = client.audio.transcriptions.create(model="whisper-tiny-en", file=f, stream=True)
        events = list(stream)
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert [e.type for e in events] == ["transcript.text.delta"] * len(deltas) + ["transcript.text.done"]
    assert len(deltas) >= 1 and all(d.delta for d in deltas)
    done = events[-1]
    assert "".join(d.delta for d in deltas) == done.text
    assert fold(done.text) == JFK_TEXT
    assert done.usage.type == "duration" and done.usage.seconds == pytest.approx(11.0, abs=0.1)


def test_streamed_text_equals_the_unstreamed_transcription(client, jfk_bytes):
    whole = client.audio.transcriptions.create(model="whisper-tiny-en", file=("jfk.flac", jfk_bytes))
    events = list(client.audio.transcriptions.create(model="whisper-tiny-en", file=("jfk.flac", jfk_bytes),
                                                     stream=True))
    assert events[-1].text == whole.text


def test_raw_sse_events_have_exact_names_and_fields(server, jfk_bytes):
    with httpx.stream("POST", server.base_url + "/v1/audio/transcriptions", timeout=120,
                      files={"file": ("jfk.flac", jfk_bytes)}, data={"model": "whisper-tiny-en", "stream": "true"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    for e in events[:-1]:
        assert set(e) == {"type", "delta"} and e["type"] == "transcript.text.delta"
    assert set(events[-1]) == {"type", "text", "usage"} and events[-1]["type"] == "transcript.text.done"
    assert events[-1]["usage"] == {"type": "duration", "seconds": pytest.approx(11.0, abs=0.1)}


@pytest.mark.parametrize("fields, param", [
    ({"response_format": "srt"}, "response_format"),
    ({"model": "piper-joe"}, "model"),
])
def test_invalid_streams_are_refused_before_the_first_byte(client, jfk_bytes, fields, param):
    kw = {"model": "whisper-tiny-en", **fields}
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(file=("jfk.flac", jfk_bytes), stream=True, **kw)
    assert e.value.body["param"] == param


def test_undecodable_upload_is_refused_before_the_first_byte(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="whisper-tiny-en", file=("x.wav", b"not audio"), stream=True)
    assert e.value.body["code"] == "invalid_audio"
