"""POST /v1/audio/embeddings on the real server with both embedding families and real speech.

d-vector runs in the default config.yml (the session server). Resemblyzer needs the torch extra:
it gets its own server and is skipped, saying why, only when torch or resemblyzer is missing.
"""

from __future__ import annotations

import base64
import importlib.util
from concurrent.futures import ThreadPoolExecutor

import av
import httpx
import numpy as np
import pytest

from tests.audio_utils import encode_file
from tests.conftest import FIXTURES, ServerProcess

RATE = 16000
# Same-speaker minus different-speaker cosine, at least. Measured: d-vector 0.81 vs 0.44,
# resemblyzer 0.81 vs 0.67 (resemblyzer's vectors are all positive, so its scale is compressed).
MARGIN = {"dvector": 0.25, "resemblyzer": 0.10}


def _channels(path, rate: int = RATE) -> np.ndarray:
    """Every channel of a file, as float32 rows at ``rate``."""
    with av.open(str(path)) as c:
        to_float = av.AudioResampler(format="fltp", rate=rate)
        frames = [f.to_ndarray() for fr in c.decode(audio=0) for f in to_float.resample(fr)]
    return np.concatenate(frames, axis=1).astype(np.float32)


def _wav(audio: np.ndarray) -> bytes:
    return encode_file(audio, RATE, "wav", "pcm_s16le")


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    jfk = _channels(FIXTURES / "jfk.flac")[0]
    left, right = _channels(FIXTURES / "stereo_diarization.wav")
    half = len(jfk) // 2
    return {"jfk_a": _wav(jfk[:half]), "jfk_b": _wav(jfk[half:]), "left": _wav(left), "right": _wav(right)}


@pytest.fixture(scope="module")
def torch_server(tmp_path_factory):
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("resemblyzer needs the torch extra: pip install -e '.[torch]'")
    tmp = tmp_path_factory.mktemp("resemblyzer")
    cfg = tmp / "config.yml"
    cfg.write_text("models:\n  - {id: resemblyzer, family: resemblyzer, weights: {package: resemblyzer, "
                   "path: pretrained.pt}, max_batch_size: 8, max_wait_ms: 20, options: {torch_threads: 1}}\n")
    with ServerProcess(cfg, tmp / "cache", tmp / "server.log") as srv:
        yield srv


@pytest.fixture(params=["dvector", "resemblyzer"])
def family(request) -> tuple[str, httpx.Client]:
    """(model id, client of a server that serves it)."""
    if request.param == "dvector":
        yield "dvector", request.getfixturevalue("http")
        return
    srv = request.getfixturevalue("torch_server")
    with httpx.Client(base_url=srv.base_url, timeout=120) as c:
        yield "resemblyzer", c


def _embed(http: httpx.Client, model: str, *files: bytes, **data) -> dict:
    r = http.post("/v1/audio/embeddings", data={"model": model, **data},
                  files=[("file", (f"clip{i}.wav", f)) for i, f in enumerate(files)])
    assert r.status_code == 200, r.text
    return r.json()


def _vectors(body: dict) -> list[np.ndarray]:
    assert [d["index"] for d in body["data"]] == list(range(len(body["data"])))
    return [np.asarray(d["embedding"], np.float64) for d in body["data"]]


def test_same_speaker_is_closer_than_different_speakers(family, clips):
    model, http = family
    jfk_a, jfk_b, left, right = _vectors(_embed(http, model, clips["jfk_a"], clips["jfk_b"], clips["left"], clips["right"]))
    same, different = float(jfk_a @ jfk_b), float(left @ right)
    assert same > 0.7, same
    assert same - different >= MARGIN[model], (same, different)


def test_response_shape_unit_norm_and_usage(family, clips):
    model, http = family
    body = _embed(http, model, clips["jfk_a"], clips["left"])
    assert body["object"] == "list" and body["model"] == model
    assert all(d["object"] == "embedding" for d in body["data"])
    for v in _vectors(body):
        assert v.shape == (256,)
        assert abs(np.linalg.norm(v) - 1.0) < 1e-4
    assert body["usage"]["seconds"] == pytest.approx(5.5 + 5.0, abs=0.01)


def test_batched_and_concurrent_equal_one_by_one(family, clips):
    model, http = family
    names = ["jfk_a", "jfk_b", "left", "right"]
    one_by_one = [_vectors(_embed(http, model, clips[n]))[0] for n in names]
    together = _vectors(_embed(http, model, *(clips[n] for n in names)))
    with ThreadPoolExecutor(len(names)) as pool:  # separate requests at once share the scheduler's batches
        concurrent = list(pool.map(lambda n: _vectors(_embed(http, model, clips[n]))[0], names))
    for single, batched, parallel in zip(one_by_one, together, concurrent):
        assert float(single @ batched) > 1 - 1e-3
        assert float(single @ parallel) > 1 - 1e-3
    # the equality above must be between different vectors, not one vector repeated
    assert float(one_by_one[0] @ one_by_one[2]) < 0.9
    assert _batches_over_one(http, model) > 0, "no batch of more than one file was formed"


def _batches_over_one(http: httpx.Client, model: str) -> float:
    """Batches of more than one item the model has run so far (from /metrics)."""
    def value(name: str, *labels: str) -> float:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith(f"speechengine_batch_size_{name}{{") and all(x in line for x in (f'model="{model}"', *labels)):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"batch_size_{name} for {model} is not in /metrics")
    return value("count") - value("bucket", 'le="1.0"')


def test_base64_encoding_matches_floats(http, clips):
    floats = _vectors(_embed(http, "dvector", clips["left"]))[0]
    packed = _embed(http, "dvector", clips["left"], encoding_format="base64")["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(packed), "<f4")
    assert np.allclose(decoded, floats, atol=1e-6)


def test_file_array_field_and_any_input_format(http, clips):
    """``file[]`` works like repeated ``file``; a 44.1 kHz stereo FLAC is decoded and downmixed."""
    jfk = (FIXTURES / "jfk.flac").read_bytes()
    r = http.post("/v1/audio/embeddings", data={"model": "dvector"},
                  files=[("file[]", ("a.flac", jfk)), ("file[]", ("b.wav", clips["jfk_a"]))])
    assert r.status_code == 200, r.text
    whole, half = _vectors(r.json())
    assert float(whole @ half) > 0.8
    assert r.json()["usage"]["seconds"] == pytest.approx(11.0 + 5.5, abs=0.01)
