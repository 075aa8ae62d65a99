"""Platform selection with simulated probes: providers, CTranslate2 device and compute type and
torch device for each platform; an absent GPU falls back to CPU with a warning, or fails under
``strict`` (unit level, and at server start)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from loguru import logger

from speechengine.platforms import PlatformUnavailableError, Probe, resolve_platform
from tests.conftest import ROOT

CPU_ONLY = Probe(ort_providers=lambda: frozenset({"CPUExecutionProvider"}), cuda_devices=lambda: 0)
NVIDIA = Probe(ort_providers=lambda: frozenset({"CUDAExecutionProvider", "CPUExecutionProvider"}),
               cuda_devices=lambda: 1)
NVIDIA_CT2_ONLY = Probe(ort_providers=lambda: frozenset({"CPUExecutionProvider"}), cuda_devices=lambda: 2)
AMD = Probe(ort_providers=lambda: frozenset({"ROCMExecutionProvider", "CPUExecutionProvider"}),
            cuda_devices=lambda: 1)  # a ROCm build of CTranslate2 reports HIP devices as CUDA devices
AMD_CPU_CT2 = Probe(ort_providers=AMD.ort_providers, cuda_devices=lambda: 0)  # CTranslate2's PyPI wheel


@pytest.fixture
def warnings():
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    yield seen
    logger.remove(sink)


@pytest.mark.parametrize(
    "device, probe, name, providers, ct2, compute, torch_device",
    [
        ("cpu", NVIDIA, "cpu", ("CPUExecutionProvider",), "cpu", "int8", "cpu"),
        ("cuda", NVIDIA, "cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda"),
        ("rocm", AMD, "rocm", ("ROCMExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda"),
        ("auto", NVIDIA, "cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda"),
        ("auto", AMD, "rocm", ("ROCMExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda"),
        ("auto", CPU_ONLY, "cpu", ("CPUExecutionProvider",), "cpu", "int8", "cpu"),
    ],
)
def test_each_platform_maps_to_library_settings(device, probe, name, providers, ct2, compute, torch_device, warnings):
    p = resolve_platform(device, probe=probe)
    assert (p.name, p.ort_providers, p.ct2_device, p.default_compute_type, p.torch_device) == (
        name, providers, ct2, compute, torch_device)
    assert p.is_gpu == (name != "cpu")
    assert warnings == []  # asked-for device present, or auto: nothing to warn about


@pytest.mark.parametrize(
    "device, probe, name, providers, ct2, compute, unseen",
    [
        ("cuda", NVIDIA_CT2_ONLY, "cuda", ("CPUExecutionProvider",), "cuda", "float16", "ONNX Runtime"),
        ("rocm", AMD_CPU_CT2, "rocm", ("ROCMExecutionProvider", "CPUExecutionProvider"), "cpu", "int8", "CTranslate2"),
    ],
)
def test_gpu_usable_by_one_library_only(device, probe, name, providers, ct2, compute, unseen, warnings):
    p = resolve_platform(device, probe=probe)
    assert (p.name, p.ort_providers, p.ct2_device, p.default_compute_type) == (name, providers, ct2, compute)
    assert len(warnings) == 1 and unseen in warnings[0] and "runs on cpu" in warnings[0]


@pytest.mark.parametrize("device, probe", [("cuda", CPU_ONLY), ("rocm", CPU_ONLY), ("rocm", NVIDIA_CT2_ONLY)])
def test_absent_gpu_falls_back_to_cpu_with_a_warning(device, probe, warnings):
    p = resolve_platform(device, probe=probe)
    assert p.name == "cpu" and p.ort_providers == ("CPUExecutionProvider",) and p.default_compute_type == "int8"
    assert len(warnings) == 1 and f"device {device!r} is not available" in warnings[0]
    assert "running on cpu instead" in warnings[0]


@pytest.mark.parametrize("device", ["cuda", "rocm"])
def test_absent_gpu_fails_under_strict(device):
    with pytest.raises(PlatformUnavailableError, match=f"device '{device}' is not available.*strict: true"):
        resolve_platform(device, strict=True, probe=CPU_ONLY)
    assert resolve_platform(device, strict=True, probe=NVIDIA if device == "cuda" else AMD).name == device


def test_thread_budget_override():
    assert resolve_platform("cpu", cpu_threads=1).cpu_threads == 1
    assert resolve_platform("cuda", cpu_threads=3, probe=NVIDIA).cpu_threads == 3


def test_default_probe_on_this_machine_has_no_gpu(warnings):
    """This machine has no GPU: the real probes must say so (GPU paths are untested here)."""
    assert resolve_platform("cuda").name == "cpu"
    assert warnings and "not available" in warnings[0]


def _config(tmp_path, strict: bool):
    cfg = tmp_path / f"strict-{strict}.yml"
    cfg.write_text(
        "models:\n"
        f"  - {{id: vad, family: silero-vad, device: cuda, strict: {str(strict).lower()},\n"
        "      weights: {package: faster_whisper, path: assets/silero_vad_v6.onnx}}\n")
    return cfg


def _start_engine(cfg) -> subprocess.CompletedProcess:
    code = ("import asyncio; from speechengine.config import load_settings; from speechengine.engine import AsyncEngine\n"
            f"e = AsyncEngine(load_settings({str(cfg)!r}))\n"
            "async def main():\n    await e.start(); print('STATUS', e.resolve('vad').status.value); await e.stop()\n"
            "asyncio.run(main())\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_model_on_absent_cuda_starts_on_cpu_or_fails_under_strict(tmp_path):
    lenient = _start_engine(_config(tmp_path, strict=False))
    assert lenient.returncode == 0, lenient.stderr
    assert "STATUS loaded" in lenient.stdout and "running on cpu instead" in lenient.stderr
    server = subprocess.run([sys.executable, "-m", "speechengine", "serve", "--config", str(_config(tmp_path, True)),
                             "--port", "0"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert server.returncode != 0, "the server must not start with a strict device it lacks"
    assert "strict: true" in server.stderr and "Application startup failed" in server.stderr
