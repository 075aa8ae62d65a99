"""Start and stop the servers under test as child processes: ours and the peers.

Peers run from their own virtualenv (bench/.venv-peers, made on first use from PyPI) so their
dependency pins never touch ours; they load the same model files from our installed packages.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "bench" / ".venv-peers"
PEER_PACKAGES = ["faster-whisper-server==0.0.3", "piper-tts==1.8.0", "flask>=3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    base_url: str
    proc: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def wait(self, path: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + path, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _spawn(name: str, argv: list[str], workdir: Path, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, cwd=workdir)
    return proc, log


def start_speechengine(config: Path, workdir: Path) -> Server:
    port = free_port()
    proc, log = _spawn("speechengine", [sys.executable, "-m", "speechengine", "serve", "--config", str(config),
                                        "--port", str(port), "--log-level", "warning"], workdir,
                       {"SPEECHENGINE_CACHE_DIR": str(workdir / "cache")})
    srv = Server("speechengine", f"http://127.0.0.1:{port}", proc, log)
    srv.wait("/health")
    return srv


def peers_python() -> Path:
    """The peers' interpreter, creating their virtualenv from PyPI on first use."""
    py = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if not stamp.exists():
        print(f"installing peers into {PEERS_VENV} ({', '.join(PEER_PACKAGES)})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
        stamp.touch()
    return py


def start_piper_http(model: Path, workdir: Path) -> Server:
    """Piper's own HTTP server (piper.http_server: Flask, POST / with {"text"} -> wav)."""
    port = free_port()
    proc, log = _spawn("piper-http", [str(peers_python()), "-m", "piper.http_server", "-m", str(model),
                                      "--host", "127.0.0.1", "--port", str(port)], workdir)
    srv = Server("piper.http_server", f"http://127.0.0.1:{port}", proc, log)
    srv.wait("/voices")
    return srv


def start_faster_whisper_server(model_dir: Path, workdir: Path, beam_size: int, threads: int) -> Server:
    """PyPI faster-whisper-server on the same CTranslate2 model folder and decoding settings."""
    port = free_port()
    cfg = workdir / "fws.yml"
    cfg.write_text(
        "models:\n"
        f"  - name: whisper-1\n    path: {model_dir}\n    batch_size: 1\n"
        f"    model_options: {{device: cpu, compute_type: int8, cpu_threads: {threads}}}\n"
        f"    transcribe_options: {{beam_size: {beam_size}, vad_filter: false}}\n"
    )
    proc, log = _spawn("fws", [str(peers_python()), "-m", "faster_whisper_server", "--config", str(cfg),
                               "--host", "127.0.0.1", "--port", str(port)], workdir)
    srv = Server("faster-whisper-server", f"http://127.0.0.1:{port}", proc, log)
    srv.wait("/health")
    return srv
