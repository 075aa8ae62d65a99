"""Bad input on /v1/audio/embeddings and /v1/audio/restore: a 4xx OpenAI error body every time,
and the server keeps serving (the same models answer a good request right after)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio_utils import encode_file

TONE = encode_file((0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000, "wav", "pcm_s16le")
SILENCE = encode_file(np.zeros(16000, np.float32), 16000, "wav", "pcm_s16le")
GARBAGE = b"this is not audio at all" * 50


def _post(path: str, files: list | None, **data):
    data.setdefault("model", "dvector" if path.endswith("embeddings") else "rnnoise")
    return (path, {"files": files, "data": data})


def _embed(*files: bytes, **data):
    return _post("/v1/audio/embeddings", [("file", (f"f{i}.wav", f)) for i, f in enumerate(files)] or None, **data)


def _restore(file: bytes | None = TONE, **data):
    return _post("/v1/audio/restore", [("file", ("f.wav", file))] if file is not None else None, **data)


CASES = {
    "embed: undecodable": (_embed(GARBAGE), 400, "file"),
    "embed: empty file": (_embed(b""), 400, "file"),
    "embed: one good file, one undecodable": (_embed(TONE, GARBAGE), 400, "file"),
    "embed: missing file": (_embed(), 400, "file"),
    "embed: file is a text field": (("/v1/audio/embeddings", {"data": {"model": "dvector", "file": "x"}}), 400, "file"),
    "embed: silence only": (_embed(SILENCE), 400, "file"),
    "embed: too many files": (_embed(*[TONE] * 33), 400, "file"),
    "embed: unknown model": (_embed(TONE, model="nope"), 404, "model"),
    "embed: missing model": (("/v1/audio/embeddings", {"files": [("file", ("a.wav", TONE))]}), 400, "model"),
    "embed: restore model": (_embed(TONE, model="rnnoise"), 400, "model"),
    "embed: stt model": (_embed(TONE, model="whisper-1"), 400, "model"),
    "embed: unknown encoding_format": (_embed(TONE, encoding_format="int8"), 400, "encoding_format"),
    "restore: undecodable": (_restore(GARBAGE), 400, "file"),
    "restore: empty file": (_restore(b""), 400, "file"),
    "restore: missing file": (_restore(None), 400, "file"),
    "restore: unknown model": (_restore(model="nope"), 404, "model"),
    "restore: embedding model": (_restore(model="dvector"), 400, "model"),
    "restore: tts model": (_restore(model="tts-1"), 400, "model"),
    "restore: unknown response_format": (_restore(response_format="ogg"), 400, "response_format"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_gets_openai_error(http, case):
    (path, kwargs), status, param = CASES[case]
    r = http.post(path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert http.get("/health").json()["status"] == "ok"


def test_models_still_serve_after_bad_input(http):
    for case in CASES.values():
        (path, kwargs), _, _ = case
        http.post(path, **kwargs)
    assert http.post("/v1/audio/embeddings", data={"model": "dvector"}, files={"file": ("a.wav", TONE)}).status_code == 200
    for model in ("rnnoise", "deepfilternet3"):
        r = http.post("/v1/audio/restore", data={"model": model}, files={"file": ("a.wav", TONE)})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
