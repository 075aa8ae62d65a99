"""Device platforms: the one place that turns a configured device into library settings.

ONNX Runtime providers, CTranslate2 device and compute type, and the torch device string all come
from here, so families never branch on the device themselves. ROCm is the CUDA path with another
ONNX Runtime provider (CTranslate2 and torch address ROCm GPUs as "cuda").

What is available is asked through a ``Probe`` (ONNX Runtime providers, CUDA device count), so
tests can simulate each platform on a machine that has none.

How many threads may compute at once in this process (the thread budget) is decided in
``platforms.threads``, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from loguru import logger

from speechengine.platforms.threads import (ThreadBudget, ThreadUse, blas_threads, cpu_count, pin_blas_threads,
                                            process_budget, size_process_budget, threads_per_session)


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

# GPU platform -> (its ONNX Runtime providers, most preferred first); ROCm is CUDA with other providers.
GPU_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cuda": ("CUDAExecutionProvider",),
    "rocm": ("ROCMExecutionProvider", "MIGraphXExecutionProvider"),
}


def resolve_platform(
    device: str, *, strict: bool = False, cpu_threads: int | None = None, probe: Probe = Probe()
) -> Platform:
    """Map a configured device to a Platform.

    An absent GPU falls back to CPU with a warning, or raises PlatformUnavailableError when
    ``strict``. ``auto`` takes a GPU if there is one (CUDA before ROCm), else CPU silently. A GPU that only one
    library can use (e.g. ONNX Runtime on ROCm with a CPU-only CTranslate2 wheel) is used by that
    library, and the other runs on CPU, with a warning. ``cpu_threads`` sets the intra-op threads
    one call may use when the family's options leave them open (the worker passes the size of its
    process's thread budget).
    """
    platform = _choose(device, strict, probe)
    return platform if cpu_threads is None else replace(platform, cpu_threads=cpu_threads)


def _choose(device: str, strict: bool, probe: Probe) -> Platform:
    if device == "cpu":
        return CPU
    providers = probe.ort_providers()
    ct2_gpus = probe.cuda_devices()
    names = [device] if device != "auto" else sorted(  # auto: a GPU ONNX Runtime can use first, CUDA before ROCm
        GPU_PROVIDERS, key=lambda n: not any(p in providers for p in GPU_PROVIDERS[n]))
    for name in names:
        ort_gpu = tuple(p for p in GPU_PROVIDERS[name] if p in providers)
        ct2_gpu = ct2_gpus > 0
        if not ort_gpu and not (name == "cuda" and ct2_gpu):
            continue  # ROCm counts only through ONNX Runtime: a CTranslate2 GPU build is a CUDA one
        if not ort_gpu or not ct2_gpu:
            logger.warning("device {!r}: {} sees no GPU and runs on cpu", name,
                           "ONNX Runtime" if not ort_gpu else "CTranslate2")
        return Platform(
            name,
            ort_providers=(*ort_gpu, "CPUExecutionProvider"),
            ct2_device="cuda" if ct2_gpu else "cpu",
            default_compute_type="float16" if ct2_gpu else "int8",
            torch_device="cuda",  # torch addresses ROCm GPUs as "cuda" too
            cpu_threads=CPU.cpu_threads,
        )
    if device == "auto":
        return CPU
    message = (f"device {device!r} is not available here "
               f"(ONNX Runtime providers: {', '.join(sorted(providers)) or 'none'}; CUDA devices: {ct2_gpus})")
    if strict:
        raise PlatformUnavailableError(message + "; the model's config says strict: true")
    logger.warning("{}; running on cpu instead (set strict: true to fail instead)", message)
    return CPU


__all__ = ["CPU", "GPU_PROVIDERS", "Platform", "PlatformUnavailableError", "Probe", "ThreadBudget", "ThreadUse",
           "blas_threads", "cpu_count", "pin_blas_threads", "process_budget", "resolve_platform",
           "size_process_budget", "threads_per_session"]
