"""Every docker compose file is valid for `docker-compose -f FILE config` (Debian's docker-compose
1.29.2, which needs no Docker engine), and each one publishes port 12080, keeps the model cache
and voices on a volume, reads keys from .env, and checks /health."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.nvidia.yml", "docker-compose.amd.yml"]


@pytest.fixture(scope="module")
def docker_compose() -> str:
    """The docker-compose binary, installed with apt-get when missing and we are root."""
    exe = shutil.which("docker-compose")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], env=env, capture_output=True,
                       timeout=600)
        exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is absent and cannot be installed here (needs root and apt-get)")
    return exe


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the files compose reads, with .env made from the committed .env.example."""
    tmp = tmp_path_factory.mktemp("compose")
    for name in (*COMPOSE_FILES, "config.yml", "config.gpu.yml"):
        shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "docker", tmp / "docker")
    shutil.copy(ROOT / ".env.example", tmp / ".env")
    return tmp


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_is_valid(docker_compose, project, name):
    run = subprocess.run([docker_compose, "-f", name, "config"], cwd=project, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    service = yaml.safe_load(run.stdout)["services"]["speechengine"]
    assert {"published": 12080, "target": 12080} in service["ports"]
    assert (project / service["build"]["dockerfile"]).is_file()
    assert any(v.startswith("speechengine-data:/data") for v in service["volumes"])
    assert service["environment"]["SPEECHENGINE_CACHE_DIR"].startswith("/data/")
    assert service["environment"]["SPEECHENGINE_DATA_DIR"].startswith("/data/")
    assert "SPEECHENGINE_API_KEYS" in service["environment"]  # from .env
    assert "/health" in " ".join(service["healthcheck"]["test"])


def test_gpu_files_ask_for_their_devices(docker_compose, project):
    def config(name: str) -> dict:
        out = subprocess.run([docker_compose, "-f", name, "config"], cwd=project, capture_output=True, text=True,
                             timeout=120, check=True).stdout
        return yaml.safe_load(out)["services"]["speechengine"]

    nvidia = config("docker-compose.nvidia.yml")
    (device,) = nvidia["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    amd = config("docker-compose.amd.yml")
    assert {"/dev/kfd", "/dev/dri"} <= {d.split(":")[0] for d in amd["devices"]}
    assert "video" in amd["group_add"]


@pytest.mark.parametrize("platform", ["cpu", "cuda", "rocm"])
def test_dockerfiles_install_the_default_extras_and_serve(platform):
    text = (ROOT / "docker" / f"Dockerfile.{platform}").read_text()
    assert "ARG EXTRAS=default" in text and 'pip install ".[${EXTRAS}]"' in text
    assert 'ENTRYPOINT ["speechengine", "serve", "--config", "/app/config.yml", "--host", "0.0.0.0"]' in text
    assert "EXPOSE 12080" in text and "/health" in text
