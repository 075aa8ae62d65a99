"""Joining an existing Ray cluster: a head node started with `ray start --head` (as a user scales
out), and a server with `ray.address: auto` whose Ray replica runs on that cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ServerProcess

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A one-node Ray cluster (1 CPU) run by `ray start --head --block`, ended by its own pid."""
    tmp = tmp_path_factory.mktemp("rayhead")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    assert shutil.which(ray_cli), "the ray CLI comes with the ray extra"
    log = open(tmp / "head.log", "w")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--num-cpus=1", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={tmp / 'ray'}", "--port=0"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in (tmp / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (tmp / "head.log").read_text()
            time.sleep(0.3)
        yield tmp
    finally:
        # Its own session holds the head and every Ray process it started. SIGTERM would drain for
        # 30 s; nothing here needs draining.
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        log.close()


def test_server_joins_a_running_cluster(ray_head, tmp_path, jfk_bytes):
    config = {
        "ray": {"address": "auto"},
        "models": [{"id": "vad", "family": "silero-vad", "executor": "ray", "num_cpus": 1,
                    "weights": {"package": "faster_whisper", "path": "assets/silero_vad_v6.onnx"}}],
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    with ServerProcess(tmp_path / "config.yml", tmp_path / "cache", tmp_path / "server.log",
                        env={"RAY_TMPDIR": str(ray_head / "ray")}) as srv:
        with httpx.Client(base_url=srv.base_url, timeout=60) as http:
            r = http.post("/v1/audio/vad", data={"model": "vad"}, files={"file": ("jfk.flac", jfk_bytes)})
            assert r.status_code == 200, r.text
            assert r.json()["segments"], "speech in jfk.flac must be found"
            (replica,) = http.get("/health").json()["executors"]["vad"]["replicas"]
            assert replica["alive"] and replica["pid"] != srv.proc.pid
        log = srv.log()
        assert "joining the Ray cluster at auto" in log and "starting a local Ray runtime" not in log
