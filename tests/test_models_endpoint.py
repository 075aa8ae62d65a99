"""/v1/models, /v1/models/{id} and /health against the real server."""

from __future__ import annotations

import openai
import pytest


def test_models_list_openai_shape(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"whisper-tiny-en", "whisper-base", "piper-joe", "silero-vad", "dvector",
                           "deepfilternet3", "rnnoise", "kokoro-en", "world-vc"}
    assert models["world-vc"].model_dump()["capabilities"] == ["vc"]
    assert models["kokoro-en"].model_dump()["capabilities"] == ["tts"]
    for m in models.values():
        assert m.object == "model" and isinstance(m.created, int) and m.owned_by
    piper = models["piper-joe"].model_dump()
    assert piper["capabilities"] == ["tts"] and piper["status"] == "loaded"
    assert piper["voices"] == ["joe"] and piper["voice_aliases"]["alloy"] == "joe"
    assert {"tts-1", "tts-1-hd"} <= set(piper["aliases"])
    base = models["whisper-base"].model_dump()
    assert "en" in base["languages"] and "de" in base["languages"] and "translate" in base["tasks"]
    assert models["whisper-tiny-en"].model_dump()["languages"] == ["en"]
    assert models["dvector"].model_dump()["capabilities"] == ["embed"]
    assert models["rnnoise"].model_dump()["capabilities"] == ["restore"]
    assert models["deepfilternet3"].model_dump()["sample_rate"] == 48000


def test_retrieve_by_alias(client):
    m = client.models.retrieve("whisper-1")
    assert m.id == "whisper-base"


def test_retrieve_unknown_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("no-such-model")
    assert e.value.body["code"] == "model_not_found"


def test_health(http):
    r = http.get("/health")
    assert r.status_code == 200
    body = r.json()
    ids = ("whisper-tiny-en", "whisper-base", "piper-joe", "silero-vad", "dvector", "deepfilternet3", "rnnoise",
           "kokoro-en", "world-vc")
    assert body["status"] == "ok" and body["models"] == {m: "loaded" for m in ids}
    assert {m: e["kind"] for m, e in body["executors"].items()} == {m: "local" for m in ids}
    assert all(e["replicas"][0]["alive"] for e in body["executors"].values())
    assert r.headers["x-request-id"]


def test_request_id_is_echoed(http):
    r = http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
