"""Streamed /v1/audio/speech against the real server and Piper, through the openai SDK's streaming
response (chunked audio) and raw SSE; plus exact HTTP chunk framing read with h11."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import time
from urllib.parse import urlparse

import av
import h11
import numpy as np
import pytest

from tests.audio_utils import Decoded, decode

FOUR_SENTENCES = (
    "The first sentence is here and it is short. The second sentence follows right after the first one. "
    "Here is the third sentence, a little longer than the others. And the fourth sentence ends it all."
)
FORMATS = ["wav", "pcm", "mp3", "opus", "aac", "flac"]
# Piper draws phoneme durations with noise, so two syntheses of the same text differ; over four
# sentences the spread measured here is under 2 %. mp3 and aac streams also keep up to ~0.1 s of
# codec priming that only a seekable header could mark for trimming (1 % of this text's ~10 s).
DURATION_TOLERANCE = 0.05


def decode_any(body: bytes, fmt: str, rate: int) -> Decoded:
    """Decode with PyAV; pcm has no header, so its format is named."""
    if fmt != "pcm":
        return decode(body)
    with av.open(io.BytesIO(body), format="s16le", options={"sample_rate": str(rate), "ch_layout": "mono"}) as c:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float32) / 32768
    return Decoded(samples, rate, 1, "pcm_s16le")


def stream_speech(client, **kw) -> tuple[list[bytes], list[float], dict]:
    """Chunks as the SDK's iter_bytes() yields them, with their arrival times since the request."""
    chunks, times = [], []
    t0 = time.perf_counter()
    with client.audio.speech.with_streaming_response.create(**{"model": "tts-1", "voice": "alloy", **kw}) as resp:
        headers = dict(resp.headers)
        for chunk in resp.iter_bytes():
            times.append(time.perf_counter() - t0)
            chunks.append(chunk)
    return chunks, times, headers


def http_chunks(base_url: str, path: str, body: dict) -> tuple[int, dict[str, str], list[bytes]]:
    """POST JSON and return the response's HTTP chunks exactly as the server framed them (h11
    marks where each chunk of a chunked body ends; higher-level clients re-split the bytes)."""
    url = urlparse(base_url)
    payload = json.dumps(body).encode()
    conn = h11.Connection(h11.CLIENT)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(conn.send(h11.Request(method="POST", target=path, headers=[
            ("Host", url.netloc), ("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])))
        sock.sendall(conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
        chunks, current, response = [], bytearray(), None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                current += event.data
                if event.chunk_end:
                    chunks.append(bytes(current))
                    current = bytearray()
            elif isinstance(event, h11.EndOfMessage):
                headers = {k.decode().lower(): v.decode() for k, v in response.headers}
                return response.status_code, headers, chunks


@pytest.mark.parametrize("fmt", FORMATS)
def test_streamed_speech_arrives_early_in_chunks_and_matches_the_whole_file(client, fmt):
    t0 = time.perf_counter()
    whole = client.audio.speech.create(model="tts-1", voice="alloy", input=FOUR_SENTENCES, response_format=fmt,
                                       extra_body={"stream": False})
    whole_seconds = time.perf_counter() - t0
    assert int(whole.response.headers["content-length"]) == len(whole.content)  # a complete file, sized

    chunks, times, headers = stream_speech(client, input=FOUR_SENTENCES, response_format=fmt)
    assert "content-length" not in headers and headers["transfer-encoding"] == "chunked"
    assert headers["x-sample-rate"] == whole.response.headers["x-sample-rate"]
    assert len(chunks) > 1
    # relative, not absolute: the first audio comes before the same synthesis, unstreamed, finished
    assert times[0] < whole_seconds

    rate = int(headers["x-sample-rate"])
    streamed, complete = decode_any(b"".join(chunks), fmt, rate), decode_any(whole.content, fmt, rate)
    assert streamed.codec == complete.codec and streamed.sample_rate == complete.sample_rate == rate
    assert 6.0 < complete.duration < 16.0  # four sentences of speech
    assert streamed.duration == pytest.approx(complete.duration, rel=DURATION_TOLERANCE)
    assert np.abs(streamed.samples).max() > 0.1


def test_streamed_wav_has_unknown_sizes_and_the_whole_file_has_exact_ones(client):
    chunks, _, _ = stream_speech(client, input="Short and sweet.", response_format="wav")
    body = b"".join(chunks)
    assert struct.unpack("<I", body[4:8])[0] == 0xFFFFFFFF and struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF
    whole = client.audio.speech.create(model="tts-1", voice="alloy", input="Short and sweet.",
                                       response_format="wav", extra_body={"stream": False}).content
    assert struct.unpack("<I", whole[4:8])[0] == len(whole) - 8
    assert struct.unpack("<I", whole[40:44])[0] == len(whole) - 44


def test_streamed_wav_has_no_jump_at_piece_joins(server):
    status, headers, chunks = http_chunks(server.base_url, "/v1/audio/speech", {
        "model": "tts-1", "voice": "alloy", "input": FOUR_SENTENCES, "response_format": "wav"})
    assert status == 200 and headers["content-type"] == "audio/wav"
    assert len(chunks) >= 4  # one chunk per sentence
    pcm = [chunks[0][44:], *chunks[1:]]
    assert all(len(p) > 0 and len(p) % 2 == 0 for p in pcm)  # every chunk holds whole samples
    pieces = [np.frombuffer(p, "<i2").astype(np.float32) / 32768 for p in pcm]
    largest_inside = max(float(np.abs(np.diff(p)).max()) for p in pieces)
    joins = [abs(float(b[0] - a[-1])) for a, b in zip(pieces, pieces[1:])]
    assert max(joins) <= largest_inside
    assert max(joins) < 0.01  # below -40 dBFS: nothing audible at any join


def test_speech_sse_events_per_piece_with_integer_usage(server, http):
    events = []
    with http.stream("POST", "/v1/audio/speech", json={
            "model": "tts-1", "voice": "alloy", "input": FOUR_SENTENCES, "response_format": "mp3",
            "stream_format": "sse"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line:
                assert line.startswith("data: ")
                events.append(json.loads(line[6:]))
    types = [e["type"] for e in events]
    assert types[-1] == "speech.audio.done" and set(types[:-1]) == {"speech.audio.delta"}
    assert len(types) - 1 >= 4  # the audio came piece by piece
    assert all(set(e) == {"type", "audio"} for e in events[:-1])
    audio = decode(b"".join(base64.b64decode(e["audio"], validate=True) for e in events[:-1]))
    assert audio.codec.startswith("mp3") and 6.0 < audio.duration < 16.0
    usage = events[-1]["usage"]
    assert set(usage) == {"input_tokens", "output_tokens", "total_tokens"}
    assert all(type(usage[k]) is int for k in usage)
    assert usage["input_tokens"] == len(FOUR_SENTENCES)
    # seconds of audio, rounded up (the decoded mp3 carries up to ~0.1 s of codec priming)
    assert audio.duration - 0.2 <= usage["output_tokens"] <= audio.duration + 1
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.parametrize("body, status, param", [
    ({"voice": "nobody"}, 400, "voice"),
    ({"model": "no-such-model"}, 404, "model"),
    ({"response_format": "ogg"}, 400, "response_format"),
    ({"input": " \n "}, 400, "input"),
    ({"model": "whisper-tiny-en"}, 400, "model"),
])
@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_bad_requests_fail_before_the_first_byte(http, body, status, param, stream_format):
    r = http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello there.",
                                            "stream_format": stream_format, **body})
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["param"] == param


def test_a_custom_voice_streams_piece_by_piece(client, jfk_bytes):
    voice = client.audio.voices.create(name="kennedy-stream", audio_sample=("jfk.flac", jfk_bytes), consent="c_1")
    try:
        chunks, times, headers = stream_speech(client, voice={"id": voice.id}, input=FOUR_SENTENCES,
                                               response_format="wav")
        assert len(chunks) > 1 and times[0] < times[-1]
        streamed = decode(b"".join(chunks))
        assert streamed.sample_rate == int(headers["x-sample-rate"])
        plain = decode(client.audio.speech.create(model="tts-1", voice="alloy", input=FOUR_SENTENCES,
                                                  response_format="wav", extra_body={"stream": False}).content)
        # conversion keeps the timing of the speech it converts (each piece on its own)
        assert streamed.duration == pytest.approx(plain.duration, rel=DURATION_TOLERANCE)
    finally:
        client.audio.voices.delete(voice.id)
