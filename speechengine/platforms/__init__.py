"""Device platforms: the one place that turns a configured device into library settings.

ONNX Runtime providers, CTranslate2 device and compute type, and the torch device string all come
from here, so families never branch on the device themselves. ROCm is the CUDA path with another
ONNX Runtime provider (CTranslate2 and torch address ROCm GPUs as "cuda").

What is available is asked through a ``Probe`` (ONNX Runtime providers, CUDA device count), so
tests can simulate each platform on a machine that has none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

from loguru import logger


class PlatformUnavailableError(RuntimeError):
    """The configured device is absent and the model's config says ``strict: true``."""


@dataclass(frozen=True)
class Platform:
    name: str  # "cpu" | "cuda" | "rocm"
    ort_providers: tuple[str, ...]
    ct2_device: str
    default_compute_type: str
    torch_device: str
    cpu_threads: int

    @property
    def is_gpu(self) -> bool:
        return self.name != "cpu"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _ort_providers() -> frozenset[str]:
    try:
        import onnxruntime

        return frozenset(onnxruntime.get_available_providers())
    except ImportError:
        return frozenset()


def _cuda_devices() -> int:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count()
    except ImportError:
        return 0


@dataclass(frozen=True)
class Probe:
    """How to ask the machine what it has; replace the callables to simulate a platform."""

    ort_providers: Callable[[], frozenset[str]] = _ort_providers
    cuda_devices: Callable[[], int] = _cuda_devices


CPU = Platform("cpu", ("CPUExecutionProvider",), "cpu", "int8", "cpu", cpu_count())
CUDA = Platform("cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda", cpu_count())
ROCM = Platform("rocm", ("ROCMExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda", cpu_count())


def _available(probe: Probe) -> dict[str, bool]:
    providers = probe.ort_providers()
    return {
        "cuda": "CUDAExecutionProvider" in providers or probe.cuda_devices() > 0,
        "rocm": "ROCMExecutionProvider" in providers or "MIGraphXExecutionProvider" in providers,
    }


def resolve_platform(
    device: str, *, strict: bool = False, cpu_threads: int | None = None, probe: Probe = Probe()
) -> Platform:
    """Map a configured device to a Platform.

    An absent GPU falls back to CPU with a warning, or raises PlatformUnavailableError when
    ``strict``. ``auto`` takes CUDA, then ROCm, then CPU, and never warns. ``cpu_threads`` sets
    the intra-op thread budget that families use when their options leave it open.
    """
    platform = _choose(device, strict, probe)
    return platform if cpu_threads is None else replace(platform, cpu_threads=cpu_threads)


def _choose(device: str, strict: bool, probe: Probe) -> Platform:
    if device == "cpu":
        return CPU
    available = _available(probe)
    wanted = {"cuda": [CUDA], "rocm": [ROCM], "auto": [CUDA, ROCM]}[device]
    for platform in wanted:
        if available[platform.name]:
            return platform
    if device == "auto":
        return CPU
    message = (f"device {device!r} is not available here "
               f"(ONNX Runtime providers: {', '.join(sorted(probe.ort_providers())) or 'none'}; "
               f"CUDA devices: {probe.cuda_devices()})")
    if strict:
        raise PlatformUnavailableError(message + "; the model's config says strict: true")
    logger.warning("{}; running on cpu instead (set strict: true to fail instead)", message)
    return CPU
