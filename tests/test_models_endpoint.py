"""/v1/models, /v1/models/{id} and /health against the real server."""

from __future__ import annotations

import openai
import pytest


def test_models_list_openai_shape(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"whisper-tiny-en", "whisper-base", "piper-joe", "silero-vad", "kokoro-en", "world-vc"}
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
    assert r.json() == {"status": "ok", "models": {m: "loaded" for m in
                                                  ("whisper-tiny-en", "whisper-base", "piper-joe", "silero-vad",
                                                   "kokoro-en", "world-vc")}}
    assert r.headers["x-request-id"]


def test_request_id_is_echoed(http):
    r = http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
