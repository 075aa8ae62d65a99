"""Shared fixtures: the real server (uvicorn on 127.0.0.1, a free port, default config.yml with
its real PyPI-carried models), clients for it, and the real speech fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A speechengine server in a child process, as a user runs it."""

    def __init__(self, config: Path, cache_dir: Path, log_path: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        data_dir = data_dir if data_dir is not None else cache_dir.parent / "data"  # never the user's voices
        full_env = {**os.environ, "SPEECHENGINE_CACHE_DIR": str(cache_dir), "SPEECHENGINE_DATA_DIR": str(data_dir),
                    "HF_HUB_OFFLINE": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "speechengine", "serve", "--config", str(config), "--port", str(self.port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT,
        )

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def __enter__(self) -> "ServerProcess":
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> ServerProcess:
    tmp = tmp_path_factory.mktemp("server")
    with ServerProcess(ROOT / "config.yml", tmp / "cache", tmp / "server.log") as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    with OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def jfk_bytes() -> bytes:
    return (FIXTURES / "jfk.flac").read_bytes()
