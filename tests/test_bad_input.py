"""Bad input: every case gets a 4xx OpenAI error body, never FastAPI's {"detail": ...}, and the
server keeps serving afterwards."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest

from tests.audio_utils import encode_file

TONE = encode_file((0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000, "wav", "pcm_s16le")


def _speech(**over):
    body = {"model": "tts-1", "voice": "alloy", "input": "Hello."}
    body.update(over)
    return ("post", "/v1/audio/speech", {"json": body})


def _stt(path="/v1/audio/transcriptions", file=("a.wav", TONE), **data):
    data.setdefault("model", "whisper-1")
    return ("post", path, {"files": {"file": file} if file else None, "data": data})


def _vc(file=("a.wav", TONE), reference=("r.wav", TONE), **data):
    data.setdefault("model", "world-vc")
    files = {k: v for k, v in (("file", file), ("reference", reference)) if v is not None}
    return ("post", "/v1/audio/voice-conversion", {"files": files, "data": data})


def _voice(sample=("s.wav", TONE), **data):
    data = {"name": "v", "consent": "cons_1", **data}
    return ("post", "/v1/audio/voices", {"files": {"audio_sample": sample} if sample else None, "data": data})


CASES = {
    "undecodable audio": (_stt(file=("a.wav", b"this is not audio at all" * 50)), 400, "file"),
    "empty file": (_stt(file=("a.wav", b"")), 400, "file"),
    "missing file": (_stt(file=None), 400, "file"),
    "file is a text field": (("post", "/v1/audio/transcriptions", {"data": {"model": "whisper-1", "file": "x"}}), 400, "file"),
    "unknown model (stt)": (_stt(model="nope"), 404, "model"),
    "unknown model (tts)": (_speech(model="nope"), 404, "model"),
    "tts model on transcriptions": (_stt(model="tts-1"), 400, "model"),
    "stt model on speech": (_speech(model="whisper-1"), 400, "model"),
    "vad model on translations": (_stt("/v1/audio/translations", model="silero-vad"), 400, "model"),
    "empty input": (_speech(input=""), 400, "input"),
    "input over 4096": (_speech(input="a" * 4097), 400, "input"),
    "missing input": (("post", "/v1/audio/speech", {"json": {"model": "tts-1", "voice": "alloy"}}), 400, "input"),
    "unknown speech format": (_speech(response_format="ogg"), 400, "response_format"),
    "unknown transcript format": (_stt(response_format="xml"), 400, "response_format"),
    "speed too high": (_speech(speed=4.5), 400, "speed"),
    "speed too low": (_speech(speed=0.1), 400, "speed"),
    "unknown voice": (_speech(voice="nobody"), 400, "voice"),
    "unknown custom voice": (_speech(voice={"id": "voice_123"}), 404, "voice"),
    "vc: undecodable source": (_vc(file=("a.wav", b"not audio" * 100)), 400, "file"),
    "vc: undecodable reference": (_vc(reference=("r.wav", b"not audio" * 100)), 400, "reference"),
    "vc: empty source": (_vc(file=("a.wav", b"")), 400, "file"),
    "vc: empty reference": (_vc(reference=("r.wav", b"")), 400, "reference"),
    "vc: no reference nor voice": (_vc(reference=None), 400, "reference"),
    "vc: unknown saved voice": (_vc(reference=None, voice="voice_nope"), 404, "voice"),
    "vc: unknown model": (_vc(model="nope"), 404, "model"),
    "vc: tts model": (_vc(model="tts-1"), 400, "model"),
    "vc: strength out of range": (_vc(strength="2"), 400, "strength"),
    "vc: unknown format": (_vc(response_format="ogg"), 400, "response_format"),
    "vc model on speech": (_speech(model="world-vc"), 400, "model"),
    "vc model on transcriptions": (_stt(model="world-vc"), 400, "model"),
    "voices: undecodable sample": (_voice(sample=("s.wav", b"not audio" * 100)), 400, "audio_sample"),
    "voices: empty sample": (_voice(sample=("s.wav", b"")), 400, "audio_sample"),
    "voices: missing sample": (_voice(sample=None), 400, "audio_sample"),
    "voices: missing name": (_voice(name=""), 400, "name"),
    "voices: tone is not speech": (_voice(), 400, "audio_sample"),
    "voices: prompt voices": (_voice(type="prompt", prompt="a warm voice"), 400, "type"),
    "voices: delete unknown": (("delete", "/v1/audio/voices/voice_nope", {}), 404, "voice_id"),
    "temperature out of range": (_stt(temperature="1.5"), 400, "temperature"),
    "bad timestamp granularity": (_stt(**{"timestamp_granularities[]": "para"}), 400, "timestamp_granularities"),
    "unsupported language": (_stt(language="xx"), 400, "language"),
    "translate on english-only model": (_stt("/v1/audio/translations", model="whisper-tiny-en"), 400, "model"),
    "vad threshold out of range": (_stt("/v1/audio/vad", model="silero-vad", threshold="2"), 400, "threshold"),
    "json body not json": (("post", "/v1/audio/speech", {"content": b"{not json", "headers": {"content-type": "application/json"}}), 400, None),
    "multipart expected": (("post", "/v1/audio/transcriptions", {"json": {"model": "whisper-1"}}), 400, None),
    "unknown route": (("get", "/v1/nothing-here", {}), 404, None),
    "wrong method": (("get", "/v1/audio/speech", {}), 405, None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_gets_openai_error(http, case):
    (method, path, kwargs), status, param = CASES[case]
    r = http.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert "detail" not in body
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and isinstance(err["message"], str)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert http.get("/health").json()["status"] == "ok"


def test_upload_over_limit_is_413(tmp_path_factory):
    from tests.conftest import ServerProcess

    tmp = tmp_path_factory.mktemp("small")
    cfg = tmp / "config.yml"
    cfg.write_text("max_upload_mb: 0.05\nmodels:\n  - {id: vad, family: silero-vad, "
                   "weights: {package: faster_whisper, path: assets/silero_vad_v6.onnx}}\n")
    with ServerProcess(cfg, tmp / "cache", tmp / "log") as srv:
        big = encode_file(np.zeros(16000 * 5, np.float32), 16000, "wav", "pcm_s16le")  # 160 kB
        r = httpx.post(srv.base_url + "/v1/audio/vad", files={"file": ("a.wav", big)}, data={"model": "vad"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        ok = httpx.post(srv.base_url + "/v1/audio/vad", files={"file": ("a.wav", big[:20000])}, data={"model": "vad"})
        assert ok.status_code == 200


def test_sdk_raises_typed_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="nope", voice="alloy", input="Hi.")
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=10)
    assert e.value.body["param"] == "speed"
