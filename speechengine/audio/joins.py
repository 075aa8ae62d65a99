"""Joining separately synthesized pieces without clicks.

Each piece is faded in and out over a few milliseconds (a raised-cosine ramp) before it is
appended, so the signal passes through zero at every join: no step between the last sample of
one piece and the first of the next, whatever DC offset or level the model left at its edges.
A piece starts and ends in the model's own silence, so the ramps touch no speech.
"""

from __future__ import annotations

import numpy as np

FADE_MS = 5.0


def fade_edges(audio: np.ndarray, sample_rate: int, ms: float = FADE_MS) -> np.ndarray:
    """A copy of ``audio`` with raised-cosine ramps from and to zero at both ends."""
    n = min(int(sample_rate * ms / 1000.0), len(audio) // 2)
    out = np.array(audio, dtype=np.float32, copy=True)
    if n < 1:
        return out
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)  # 0 ... just under 1
    out[:n] *= ramp
    out[len(out) - n:] *= ramp[::-1]
    return out
