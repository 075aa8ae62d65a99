"""WebSocket /v1/audio/vad/stream on the real server with the real Silero model and real speech:
streamed in small chunks it finds what POST /v1/audio/vad finds in the whole file; concurrent
streams share batches yet each gets its own answer; bad input gets an error and a close code;
streams that vanish leave the model free. Plus the family's chunk batching in-process."""

from __future__ import annotations

import io
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faster_whisper
import httpx
import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from speechengine.audio import resample
from speechengine.capabilities import VADChunkInput
from speechengine.models.base import FamilyOptions
from speechengine.models.silero_vad import WINDOW, SileroVAD
from speechengine.platforms import resolve_platform
from tests.audio_utils import decode
from tests.conftest import FIXTURES, ServerProcess

pytestmark = pytest.mark.server

KEY = "sk-vad-stream"
AUTH = {"Authorization": f"Bearer {KEY}"}
SILERO = "{package: faster_whisper, path: assets/silero_vad_v6.onnx}"


@pytest.fixture(scope="module")
def vad_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vad-stream")
    cfg = tmp / "config.yml"
    cfg.write_text(f"""
models:
  - {{id: silero-vad, family: silero-vad, weights: {SILERO}, max_batch_size: 16, max_wait_ms: 5}}
  - {{id: silero-vad-process, family: silero-vad, weights: {SILERO}, executor: process, max_batch_size: 16,
     max_wait_ms: 5}}
  - {{id: world-vc, family: world-vc, weights: {{package: pyworld}}}}
""")
    with ServerProcess(cfg, tmp / "cache", tmp / "server.log", env={"SPEECHENGINE_API_KEYS": KEY}) as srv:
        yield srv


@pytest.fixture(scope="module")
def jfk16k() -> np.ndarray:
    src = decode((FIXTURES / "jfk.flac").read_bytes())
    return resample(src.samples, src.sample_rate, 16000)


def as_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")


def padded(jfk: np.ndarray, before_s: float, after_s: float) -> np.ndarray:
    """JFK between real silences, as the PCM16 samples both endpoints get."""
    return as_pcm16(np.concatenate([np.zeros(int(before_s * 16000), np.float32), jfk,
                                    np.zeros(int(after_s * 16000), np.float32)]))


def ws_url(server: ServerProcess, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return server.base_url.replace("http://", "ws://") + "/v1/audio/vad/stream" + (f"?{query}" if query else "")


def post_vad(server: ServerProcess, pcm: np.ndarray, **opts) -> dict:
    buf = io.BytesIO()
    sf.write(buf, pcm, 16000, format="WAV", subtype="PCM_16")
    r = httpx.post(server.base_url + "/v1/audio/vad", headers=AUTH, timeout=120,
                   files={"file": ("a.wav", buf.getvalue())}, data={"model": "silero-vad", **opts})
    assert r.status_code == 200, r.text
    return r.json()


def stream_vad(server: ServerProcess, pcm: np.ndarray, chunk_ms: float, headers=AUTH, **params) -> list[dict]:
    """Every message the server sends for ``pcm`` streamed in ``chunk_ms`` pieces, then "end"."""
    step = int(chunk_ms * 16)
    with connect(ws_url(server, **params), additional_headers=headers, max_size=None) as ws:
        for i in range(0, len(pcm), step):
            ws.send(pcm[i:i + step].tobytes())
        ws.send(json.dumps({"type": "end"}))
        return [json.loads(m) for m in ws]


def segments_of(events: list[dict]) -> list[tuple[float, float]]:
    assert events[-1]["type"] == "done", events
    return [(s["start"], s["end"]) for s in events[-1]["segments"]]


def assert_same_segments(streamed: list[tuple[float, float]], whole: dict) -> None:
    expected = [(s["start"], s["end"]) for s in whole["segments"]]
    assert len(streamed) == len(expected) > 0
    for (a, b), (c, d) in zip(streamed, expected):
        assert a == pytest.approx(c, abs=0.01) and b == pytest.approx(d, abs=0.01)


def scrape(server: ServerProcess) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(httpx.get(server.base_url + "/metrics").text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def batches_over_one(server: ServerProcess, model: str) -> float:
    samples = scrape(server)
    labels = {"model": model, "capability": "vad"}
    count = samples.get(("speechengine_batch_size_count", tuple(sorted(labels.items()))), 0.0)
    ones = samples.get(("speechengine_batch_size_bucket", tuple(sorted({**labels, "le": "1.0"}.items()))), 0.0)
    return count - ones


# --- one stream ----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk_ms", [20, 100])
def test_stream_finds_the_segments_of_the_whole_file(vad_server, jfk16k, chunk_ms):
    pcm = padded(jfk16k, 2.0, 2.0)
    whole = post_vad(vad_server, pcm)
    events = stream_vad(vad_server, pcm, chunk_ms)
    streamed = segments_of(events)
    assert_same_segments(streamed, whole)
    assert events[-1]["duration"] == whole["duration"] == pytest.approx(len(pcm) / 16000, abs=0.001)
    assert events[-1]["speech_duration"] == pytest.approx(whole["speech_duration"], abs=0.02)
    # Every segment was announced while audio was arriving, started then stopped, before "done".
    live = events[:-1]
    assert [e["type"] for e in live] == ["speech_started", "speech_stopped"] * len(streamed)
    assert [(e["start"], e["end"]) for e in live if e["type"] == "speech_stopped"] == streamed
    assert [e["start"] for e in live if e["type"] == "speech_started"] == [s for s, _ in streamed]


def test_events_arrive_while_audio_is_still_coming(vad_server, jfk16k):
    """The first speech_stopped comes once the audio after it proves the silence, not at the end."""
    pcm = padded(jfk16k, 1.0, 1.0)
    first_end = post_vad(vad_server, pcm)["segments"][0]["end"]
    split = int((first_end + 0.8) * 16000)  # min_silence_duration_ms (500) past the end, and a margin
    assert split < len(pcm) - 16000 * 5
    step = 50 * 16
    with connect(ws_url(vad_server), additional_headers=AUTH) as ws:
        for i in range(0, split, step):
            ws.send(pcm[i:min(i + step, split)].tobytes())
        early = [json.loads(ws.recv(timeout=60)), json.loads(ws.recv(timeout=60))]  # sent nothing else yet
        for i in range(split, len(pcm), step):
            ws.send(pcm[i:i + step].tobytes())
        ws.send(json.dumps({"type": "end"}))
        rest = [json.loads(m) for m in ws]
    assert [e["type"] for e in early] == ["speech_started", "speech_stopped"]
    assert early[1]["end"] == first_end
    assert rest[-1]["type"] == "done" and len(rest[-1]["segments"]) > 1


def test_options_and_start_message(vad_server, jfk16k):
    pcm = padded(jfk16k, 1.0, 1.0)
    opts = {"min_silence_duration_ms": 3000, "speech_pad_ms": 400}
    whole = post_vad(vad_server, pcm, **{k: str(v) for k, v in opts.items()})
    assert len(whole["segments"]) == 1
    assert_same_segments(segments_of(stream_vad(vad_server, pcm, 64, **opts)), whole)
    step = 64 * 16
    with connect(ws_url(vad_server, min_silence_duration_ms=100), additional_headers=AUTH) as ws:
        ws.send(json.dumps({"type": "start", "model": "silero-vad", **opts}))  # overrides the query
        for i in range(0, len(pcm), step):
            ws.send(pcm[i:i + step].tobytes())
        ws.send(json.dumps({"type": "end"}))
        assert_same_segments(segments_of([json.loads(m) for m in ws]), whole)


def test_process_executor_streams_too(vad_server, jfk16k):
    """The state travels with each chunk, so a worker in another process serves the stream."""
    pcm = padded(jfk16k, 0.5, 1.5)
    whole = post_vad(vad_server, pcm)
    assert_same_segments(segments_of(stream_vad(vad_server, pcm, 40, model="silero-vad-process")), whole)


# --- many streams --------------------------------------------------------------------------------

def test_concurrent_streams_share_batches_and_keep_their_own_state(vad_server, jfk16k):
    audios = [padded(jfk16k, 0.3, 0.5), padded(jfk16k[: 16000 * 6], 2.5, 1.0),
              padded(jfk16k[16000 * 5:], 1.2, 0.2), padded(np.concatenate([jfk16k[16000 * 7:], jfk16k]), 0.0, 3.0)]
    chunks = [20, 32, 50, 100]
    expected = [post_vad(vad_server, a) for a in audios]
    assert len({tuple((s["start"], s["end"]) for s in e["segments"]) for e in expected}) == 4  # all different
    before = batches_over_one(vad_server, "silero-vad")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda ac: stream_vad(vad_server, *ac), zip(audios, chunks)))
    for events, whole in zip(results, expected):
        assert_same_segments(segments_of(events), whole)
    assert batches_over_one(vad_server, "silero-vad") > before  # chunks of several streams ran together


# --- bad input, auth, vanished clients -----------------------------------------------------------

def error_and_close(server: ServerProcess, *messages, headers=AUTH, **params) -> tuple[dict, int]:
    with connect(ws_url(server, **params), additional_headers=headers) as ws:
        try:
            for m in messages:
                ws.send(m)
        except ConnectionClosed:
            pass
        received = []
        try:
            while True:
                received.append(json.loads(ws.recv(timeout=60)))
        except ConnectionClosed:
            pass
        return received[-1], ws.close_code


@pytest.mark.parametrize("params, messages, code, param, close", [
    ({"model": "nope"}, [b"\0\0"], "model_not_found", "model", 1008),
    ({"model": "world-vc"}, [b"\0\0"], "model_not_supported", "model", 1008),
    ({"threshold": "2"}, [b"\0\0"], None, "threshold", 1008),
    ({"speech_pad_ms": "x"}, [b"\0\0"], None, "speech_pad_ms", 1008),
    ({"colour": "red"}, [b"\0\0"], None, "colour", 1008),
    ({}, [b"\0\0\0"], "invalid_audio", None, 1007),
    ({}, [b"\0\0", "not json"], None, None, 1008),
    ({}, [b"\0\0", json.dumps({"type": "start"})], None, None, 1008),
])
def test_bad_input_is_an_error_event_and_a_close_code(vad_server, params, messages, code, param, close):
    error, close_code = error_and_close(vad_server, *messages, **params)
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == code and error["error"]["param"] == param
    assert error["error"]["message"]
    assert close_code == close


@pytest.mark.parametrize("headers, ok", [
    ({}, False), ({"Authorization": "Bearer wrong"}, False), ({"Api-Key": "wrong"}, False),
    ({"Authorization": f"Bearer {KEY}"}, True), ({"Api-Key": KEY}, True),
])
def test_api_key_like_http_routes(vad_server, jfk16k, headers, ok):
    if ok:
        assert segments_of(stream_vad(vad_server, padded(jfk16k[:16000 * 3], 0.5, 0.5), 100, headers=headers))
    else:
        error, close_code = error_and_close(vad_server, b"\0\0", headers=headers)
        assert error["error"]["code"] == "invalid_api_key" and close_code == 1008


def test_vanished_streams_leave_the_model_free(vad_server, jfk16k):
    pcm = padded(jfk16k, 0.5, 0.5)
    for _ in range(4):  # leave mid-audio, without "end"
        with connect(ws_url(vad_server), additional_headers=AUTH) as ws:
            for i in range(0, len(pcm) // 2, 1600):
                ws.send(pcm[i:i + 1600].tobytes())
            ws.socket.shutdown(socket.SHUT_RDWR)  # a dropped connection, no close handshake
    # Unloading waits for every stream holding the model: it returns once the dropped ones let go.
    r = httpx.post(vad_server.base_url + "/v1/models/silero-vad/unload", headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    assert scrape(vad_server)[("speechengine_queue_depth", (("model", "silero-vad"),))] == 0
    assert_same_segments(segments_of(stream_vad(vad_server, pcm, 100)), post_vad(vad_server, pcm))
    assert "Traceback" not in vad_server.log()


# --- the family's chunk batching, in-process -----------------------------------------------------

def test_batched_chunks_equal_unbatched_and_whole_file(jfk16k):
    weights = Path(os.path.dirname(faster_whisper.__file__)) / "assets" / "silero_vad_v6.onnx"
    family = SileroVAD(weights, FamilyOptions(), resolve_platform("cpu"))
    family.load()
    audios = [padded(jfk16k, s, 0.5).astype(np.float32) / 32768 for s in (0.0, 0.7, 1.3, 2.1)]
    frames = min(len(a) for a in audios) // WINDOW
    audios = [a[: frames * WINDOW] for a in audios]
    whole = [family.probabilities(a) for a in audios]

    def run(batched: bool, sizes: list[int]) -> list[np.ndarray]:
        states, probs, pos, turn = [None] * 4, [[] for _ in audios], 0, 0
        while pos < frames:
            n = min(sizes[turn % len(sizes)], frames - pos)
            items = [VADChunkInput(a[pos * WINDOW:(pos + n) * WINDOW], s) for a, s in zip(audios, states)]
            outs = family.detect_chunks(items) if batched else [family.detect_chunks([i])[0] for i in items]
            for k, out in enumerate(outs):
                probs[k].append(out.probabilities)
                states[k] = out.state
            pos, turn = pos + n, turn + 1
        return [np.concatenate(p) for p in probs]

    batched, alone = run(True, [1, 3, 2]), run(False, [2, 1])
    for b, a, w in zip(batched, alone, whole):
        assert len(b) == len(a) == len(w) == frames
        assert np.abs(b - a).max() < 1e-4
        # Not the last frame: faster-whisper's whole-file call zeroes a file's last 64 samples (it
        # writes the first frame's zero context through a view of the audio), a stream does not.
        assert np.abs(b[:-1] - w[:-1]).max() < 1e-4
    assert np.abs(batched[0] - batched[3]).max() > 0.1  # the streams really differ
