"""Config validation: bad config fails at start naming the field; env overrides the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from speechengine.config import HubWeights, LocalWeights, PackageWeights, load_settings
from speechengine.errors import ConfigError
from tests.conftest import ROOT

GOOD_MODEL = "  - {id: vad, family: silero-vad, weights: {package: faster_whisper, path: assets/silero_vad_v6.onnx}}\n"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yml"
    p.write_text(text)
    return p


def test_default_config_is_valid():
    s = load_settings(ROOT / "config.yml")
    ids = [m.id for m in s.models]
    assert {"whisper-tiny-en", "whisper-base", "piper-joe", "silero-vad"} <= set(ids)
    by_id = {m.id: m for m in s.models}
    assert "whisper-1" in by_id["whisper-base"].aliases
    assert {"tts-1", "tts-1-hd"} <= set(by_id["piper-joe"].aliases)
    assert by_id["piper-joe"].voices["alloy"] == "joe"
    assert isinstance(by_id["whisper-base"].weights, PackageWeights)
    assert s.port == 12080 and s.host == "127.0.0.1"
    assert by_id["kokoro-en"].voices["alloy"] == "jf_alpha"
    assert s.conversion_model() == "world-vc" and s.sample_vad_model() == "silero-vad"


def test_voice_models_default_to_the_first_with_the_capability(tmp_path):
    s = load_settings(write(tmp_path, "models:\n"
                            "  - {id: v, family: silero-vad, weights: {local: /x}}\n"
                            "  - {id: c, family: world-vc, weights: {local: /x}}\n"))
    assert s.conversion_model() == "c" and s.sample_vad_model() == "v"
    assert load_settings(write(tmp_path, "models: []\n")).conversion_model() is None


def test_weights_sources_parse(tmp_path):
    s = load_settings(write(tmp_path, "models:\n"
                            "  - {id: a, family: silero-vad, weights: {hub: org/repo, revision: main}}\n"
                            "  - {id: b, family: silero-vad, weights: {local: /tmp/x}}\n"
                            "  - {id: c, family: silero-vad, weights: {package: [p1, p2], path: data}}\n"))
    assert isinstance(s.models[0].weights, HubWeights) and s.models[0].weights.hub == "org/repo"
    assert isinstance(s.models[1].weights, LocalWeights)
    assert isinstance(s.models[2].weights, PackageWeights) and s.models[2].weights.package == ["p1", "p2"]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("models:\n  - {id: a, family: nosuch, weights: {local: /x}}\n", "unknown model family 'nosuch'"),
        ("models:\n  - {id: a, family: faster-whisper, weights: {local: /x}, options: {beam: 5}}\n",
         "options.beam"),
        ("models:\n  - {id: a, family: faster-whisper, weights: {local: /x}, options: {beam_size: 0}}\n",
         "options.beam_size"),
        ("models:\n  - {id: a, family: silero-vad}\n", "models.0.weights"),
        ("models:\n  - {id: a, family: silero-vad, weights: {local: /x}, max_batch_size: 0}\n",
         "models.0.max_batch_size"),
        ("models:\n  - {id: a, family: silero-vad, weights: {local: /x}, colour: red}\n", "models.0.colour"),
        ("prot: 1\n", "prot"),
        ("models:\n  - {id: a, family: silero-vad, weights: {local: /x}, aliases: [b]}\n"
         "  - {id: b, family: silero-vad, weights: {local: /x}}\n", "'b' is used by both"),
        ("models:\n  - {id: a, family: silero-vad, weights: {local: /x}, voices: {alloy: x}}\n", "only for TTS"),
        ("models: [\n", "not valid YAML"),
        ("voices: {conversion_model: a}\nmodels:\n  - {id: a, family: silero-vad, weights: {local: /x}}\n",
         "voices.conversion_model: model 'a' has no vc capability"),
        ("voices: {vad_model: nope}\n", "voices.vad_model: no model named 'nope'"),
        ("voices: {max_sample_mb: 0}\n", "voices.max_sample_mb"),
        ("models:\n  - {id: a, family: world-vc, weights: {local: /x}, options: {strength: 2}}\n",
         "options.strength"),
    ],
)
def test_invalid_config_names_the_field(tmp_path, text, needle):
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text))
    assert needle in str(e.value)


def test_env_overrides_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHENGINE_PORT", "9999")
    monkeypatch.setenv("SPEECHENGINE_API_KEYS", "k1, k2")
    monkeypatch.setenv("SPEECHENGINE_CACHE_DIR", str(tmp_path / "c"))
    s = load_settings(write(tmp_path, "port: 1234\n" + "models:\n" + GOOD_MODEL))
    assert s.port == 9999 and s.api_keys == ["k1", "k2"] and s.cache_dir == tmp_path / "c"


def test_serve_with_bad_config_exits_with_message(tmp_path):
    cfg = write(tmp_path, "models:\n  - {id: a, family: faster-whisper, weights: {local: /x}, options: {beam: 5}}\n")
    r = subprocess.run([sys.executable, "-m", "speechengine", "serve", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "options.beam" in r.stderr and "Traceback" not in r.stderr


def test_cli_help_explains():
    r = subprocess.run([sys.executable, "-m", "speechengine", "serve", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for flag in ("--config", "--host", "--port", "--log-level"):
        assert flag in r.stdout
