"""Device platforms: the one place that turns a configured device into library settings.

ONNX Runtime providers, CTranslate2 device and compute type, and the torch device string all come
from here, so families never branch on the device themselves. ROCm is the CUDA path with another
ONNX Runtime provider (CTranslate2 and torch address ROCm GPUs as "cuda").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from loguru import logger


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


def _ort_providers() -> set[str]:
    try:
        import onnxruntime

        return set(onnxruntime.get_available_providers())
    except ImportError:
        return set()


def _cuda_devices() -> int:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count()
    except ImportError:
        return 0


CPU = Platform("cpu", ("CPUExecutionProvider",), "cpu", "int8", "cpu", cpu_count())


def resolve_platform(device: str, *, strict: bool = False) -> Platform:
    """Map a configured device to a Platform, falling back to CPU with a warning when absent."""
    if device == "cpu":
        return CPU
    providers = _ort_providers()
    has_cuda = "CUDAExecutionProvider" in providers or _cuda_devices() > 0
    has_rocm = "ROCMExecutionProvider" in providers or "MIGraphXExecutionProvider" in providers
    if device in ("cuda", "auto") and has_cuda:
        return Platform("cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda", CPU.cpu_threads)
    if device in ("rocm", "auto") and has_rocm:
        return Platform("rocm", ("ROCMExecutionProvider", "CPUExecutionProvider"), "cuda", "float16", "cuda", CPU.cpu_threads)
    if device == "auto":
        return CPU
    message = f"device {device!r} is not available here (ONNX Runtime providers: {sorted(providers) or 'none'})"
    if strict:
        raise RuntimeError(message)
    logger.warning("{}; running on cpu instead", message)
    return CPU
