"""Run a stateful frame-by-frame processor (a streaming denoiser's C API) over a whole signal.

Shared by the restoration families: the signal is padded to whole frames plus the processor's
delay, fed frame by frame, and the output is cut back so it lines up sample for sample with the
input.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def run_frames(audio: np.ndarray, frame: int, delay: int, process: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``process`` takes one frame (float32, ``frame`` samples) and returns the processed frame."""
    total = len(audio) + delay
    padded = np.zeros(total + (-total) % frame, np.float32)
    padded[: len(audio)] = audio
    out = np.empty_like(padded)
    for i in range(0, len(padded), frame):
        out[i : i + frame] = process(padded[i : i + frame])
    return out[delay : delay + len(audio)].copy()
