"""POST /v1/audio/restore on the real server (default config.yml) with both denoisers.

The noisy input is jfk.flac (44.1 kHz) with white noise at 5 dB SNR, one second of the same noise
alone in front of it (where the noise floor is measured), written as a stereo FLAC: any rate and
channel count must come back mono at the input's rate, as long as the input, aligned with it.
"""

from __future__ import annotations


import numpy as np
import pytest

from tests.audio_utils import decode, encode_file, fold
from tests.conftest import FIXTURES

RATE = 44100
LEAD_S = 1.0
FAMILIES = ["deepfilternet3", "rnnoise"]


def _db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


@pytest.fixture(scope="module")
def noisy() -> dict:
    clean = decode((FIXTURES / "jfk.flac").read_bytes())
    assert clean.sample_rate == RATE
    speech = clean.samples
    lead = int(LEAD_S * RATE)
    signal = np.concatenate([np.zeros(lead, np.float32), speech])
    rms = np.sqrt(np.mean(speech.astype(np.float64) ** 2))
    noise_rms = rms / 10 ** (5 / 20)  # 5 dB SNR over the speech
    noise = np.random.default_rng(7).standard_normal(len(signal)) * noise_rms
    mix = signal + noise
    scale = 0.9 / np.max(np.abs(mix))  # no clipping; the SNR stays 5 dB
    mix, signal = (mix * scale).astype(np.float32), (signal * scale).astype(np.float32)
    return {"clean": signal, "mix": mix, "file": encode_file(mix, RATE, "flac", "flac", channels=2)}


def _restore(http, model: str, file: bytes, name: str = "noisy.flac", **data):
    r = http.post("/v1/audio/restore", data={"model": model, **data}, files={"file": (name, file)})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("model", FAMILIES)
def test_denoises_keeps_length_rate_alignment_and_words(http, client, noisy, model):
    r = _restore(http, model, noisy["file"])
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["x-sample-rate"] == str(RATE)
    out = decode(r.content)
    assert out.sample_rate == RATE and out.channels == 1
    assert abs(out.duration - len(noisy["mix"]) / RATE) <= 0.01 * out.duration

    floor = slice(int(0.3 * RATE), int(0.95 * RATE))  # noise alone, past the models' first frames
    before, after = _db(noisy["mix"][floor]), _db(out.samples[floor])
    assert before - after >= 20, f"noise floor {before:.1f} -> {after:.1f} dBFS"

    # Lined up with the input: the restored speech correlates best with the clean speech at lag 0.
    speech = slice(int(LEAD_S * RATE), len(out.samples))
    a, b = noisy["clean"][speech], out.samples[speech]
    lags = range(-200, 201)
    best = max(lags, key=lambda lag: float(np.dot(a[max(0, -lag):len(a) - max(0, lag)],
                                                  b[max(0, lag):len(b) - max(0, -lag)])))
    assert abs(best) <= 44, f"output is {best} samples off the input"  # within 1 ms

    text = client.audio.transcriptions.create(model="whisper-tiny-en", file=("restored.wav", r.content)).text
    assert "ask not what your country can do for you" in fold(text)


@pytest.mark.parametrize("model", FAMILIES)
def test_any_rate_and_channels_in_same_rate_out(http, model):
    """A 16 kHz stereo wav comes back as 16 kHz mono pcm with exactly as many samples."""
    data = (FIXTURES / "stereo_diarization.wav").read_bytes()
    r = _restore(http, model, data, name="two.wav", response_format="pcm")
    assert r.headers["x-sample-rate"] == "16000"
    pcm = np.frombuffer(r.content, "<i2")
    assert len(pcm) == 5 * 16000
    assert np.abs(pcm).max() > 1000  # speech is still there


@pytest.mark.parametrize("fmt,codec", [("mp3", "mp3"), ("flac", "flac"), ("opus", "opus"), ("aac", "aac")])
def test_response_formats(http, noisy, fmt, codec):
    r = _restore(http, "rnnoise", noisy["file"], response_format=fmt)
    out = decode(r.content)
    assert out.codec.startswith(codec) and out.channels == 1
    assert out.sample_rate == (48000 if fmt == "opus" else RATE)  # Opus has no 44.1 kHz
    assert out.duration == pytest.approx(len(noisy["mix"]) / RATE, abs=0.1)


def test_concurrent_requests_are_independent(http, noisy):
    """Each request has its own model state: the same input twice at once gives the same output
    as alone (a state shared between streams would leak one into the other)."""
    from concurrent.futures import ThreadPoolExecutor

    quiet = encode_file(noisy["mix"][: RATE * 3] * 0.5, RATE, "wav", "pcm_s16le")
    alone = np.frombuffer(_restore(http, "deepfilternet3", noisy["file"], response_format="pcm").content, "<i2")
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda f: _restore(http, "deepfilternet3", f, response_format="pcm").content,
                             [noisy["file"], quiet]))
    assert np.array_equal(np.frombuffer(both[0], "<i2"), alone)


@pytest.mark.parametrize("model", FAMILIES)
def test_unload_then_reload_serves_the_same(http, model):
    """close() frees the model's native state; the next request loads it again and gets the same audio."""
    data = (FIXTURES / "stereo_diarization.wav").read_bytes()
    before = _restore(http, model, data, name="two.wav", response_format="pcm").content
    assert http.post(f"/v1/models/{model}/unload").json()["status"] == "unloaded"
    after = _restore(http, model, data, name="two.wav", response_format="pcm").content
    assert after == before
    assert http.get(f"/v1/models/{model}").json()["status"] == "loaded"
