"""Signal-processing voice conversion on the WORLD vocoder (pyworld, MIT) and Praat formants
(praat-parselmouth, GPL-3.0).

What it changes: the pitch contour (log-f0 mapped onto the target's mean and spread), the
spectral envelope's formant scale (warped by the ratio of the target's to the source's median
F1-F3) and its long-term shape (equalised toward the target's average voiced and unvoiced
envelopes). With ``strength`` > 0 each voiced frame's envelope is also blended with the mean of
its nearest target frames (a small kNN-VC in the cepstral domain). What it keeps: the source's
timing, aperiodicity (breathiness) and phonetic content. It does not model the target's
articulation or prosody beyond pitch statistics, so it moves a voice toward a target rather than
reproducing it.

A target's speaker profile is computed once and cached in memory (by the reference's key) and,
when the reference names a profile folder (a saved voice), on disk as ``world-vc-v1.npz``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, SpeakerReference, VCInput, VCOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo
from speechengine.platforms import blas_threads

RATE = 16000
FRAME_MS = 5.0
N_CEPS = 40  # cepstral order kept for envelopes in the profile (smooth envelope, compact file)
PROFILE_VERSION = "world-vc-v1"
SILENCE_DB = 45.0  # frames this far below the loudest frame are silence, left out of statistics


class WorldVCOptions(FamilyOptions):
    strength: float = Field(0.5, ge=0.0, le=1.0, description="default blend toward nearest target envelopes")
    neighbours: int = Field(4, ge=1, le=64, description="target frames averaged per source frame")
    max_eq_db: float = Field(13.0, ge=0.0, le=40.0, description="limit of the long-term envelope equaliser")
    min_reference_s: float = Field(1.0, gt=0.0, description="least voiced speech a target reference needs")
    profile_cache_size: int = Field(64, ge=1, description="speaker profiles kept in memory")


# --- analysis ---------------------------------------------------------------------------------


def _analyze(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pyworld

    x = np.ascontiguousarray(x, np.float64)
    f0, t = pyworld.harvest(x, RATE, f0_floor=60.0, f0_ceil=500.0, frame_period=FRAME_MS)
    envelope = pyworld.cheaptrick(x, f0, t, RATE)
    aperiodicity = pyworld.d4c(x, f0, t, RATE)
    return f0, np.log(np.maximum(envelope, 1e-16)), aperiodicity


def _active_frames(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Frames holding sound (not digital or near silence), by energy relative to the loudest."""
    hop = int(RATE * FRAME_MS / 1000)
    padded = np.pad(x.astype(np.float64), (hop, n_frames * hop))
    energy = np.array([np.mean(padded[i * hop:i * hop + 2 * hop] ** 2) for i in range(n_frames)])
    db = 10 * np.log10(energy + 1e-12)
    return db > db.max() - SILENCE_DB


def _formants(x: np.ndarray) -> np.ndarray:
    """Median F1..F3 over voiced 10 ms frames (Praat Burg, 5 formants below 5.5 kHz)."""
    import parselmouth

    sound = parselmouth.Sound(x.astype(np.float64), RATE)
    formant = sound.to_formant_burg(0.01, 5, 5500)
    pitch = sound.to_pitch_ac(0.01, 60, 500)
    times = [t for t in formant.xs() if not np.isnan(pitch.get_value_at_time(t))]
    values = [[formant.get_value_at_time(i, t) for t in times] for i in (1, 2, 3)]
    return np.array([np.nanmedian(v) if len(v) else np.nan for v in values])


def _to_ceps(log_env: np.ndarray) -> np.ndarray:
    from scipy.fft import dct

    return dct(log_env, norm="ortho", axis=-1)[..., :N_CEPS]


def _from_ceps(ceps: np.ndarray, n_bins: int) -> np.ndarray:
    from scipy.fft import idct

    full = np.zeros(ceps.shape[:-1] + (n_bins,))
    full[..., :N_CEPS] = ceps
    return idct(full, norm="ortho", axis=-1)


def _mean_or(frames: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    return frames.mean(0) if len(frames) > 10 else fallback


class SpeakerProfile:
    """What conversion needs to know about a speaker: pitch statistics, formants, long-term
    voiced/unvoiced envelopes (cepstra) and the voiced-frame envelope codebook (cepstra)."""

    def __init__(self, log_f0_mean: float, log_f0_std: float, formants: np.ndarray, voiced_ceps: np.ndarray,
                 unvoiced_ceps: np.ndarray, codebook: np.ndarray) -> None:
        self.log_f0_mean = log_f0_mean
        self.log_f0_std = log_f0_std
        self.formants = formants
        self.voiced_ceps = voiced_ceps
        self.unvoiced_ceps = unvoiced_ceps
        self.codebook = codebook

    @classmethod
    def measure(cls, x: np.ndarray, f0: np.ndarray, log_env: np.ndarray) -> "SpeakerProfile":
        active = _active_frames(x, len(f0))
        voiced = (f0 > 0) & active
        unvoiced = (f0 == 0) & active
        log_f0 = np.log(f0[voiced]) if voiced.any() else np.array([np.log(120.0)])
        ceps = _to_ceps(log_env)
        voiced_mean = _mean_or(ceps[voiced], ceps[active].mean(0))
        return cls(float(log_f0.mean()), float(max(log_f0.std(), 1e-3)), _formants(x), voiced_mean,
                   _mean_or(ceps[unvoiced], voiced_mean), ceps[voiced].astype(np.float32))

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, version=PROFILE_VERSION, log_f0=np.array([self.log_f0_mean, self.log_f0_std]),
                 formants=self.formants, voiced_ceps=self.voiced_ceps, unvoiced_ceps=self.unvoiced_ceps,
                 codebook=self.codebook)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "SpeakerProfile | None":
        try:
            with np.load(path) as z:
                if str(z["version"]) != PROFILE_VERSION:
                    return None
                return cls(float(z["log_f0"][0]), float(z["log_f0"][1]), z["formants"], z["voiced_ceps"],
                           z["unvoiced_ceps"], z["codebook"])
        except (OSError, KeyError, ValueError):
            return None


# --- conversion -------------------------------------------------------------------------------


def _warp(log_env: np.ndarray, ratio: float) -> np.ndarray:
    """Move every spectral feature at frequency f to ratio * f (linear interpolation over bins)."""
    n = log_env.shape[1]
    k = np.clip(np.arange(n) / ratio, 0, n - 1)
    i0 = k.astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = k - i0
    return log_env[:, i0] * (1 - w) + log_env[:, i1] * w


def _nearest_mean(query: np.ndarray, codebook: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k nearest codebook rows to each query row, matching on shape (c1..), not level."""
    q, c = query[:, 1:], codebook[:, 1:].astype(np.float64)
    out = np.empty_like(query)
    for start in range(0, len(q), 512):  # bounded memory for long inputs
        block = q[start:start + 512]
        d = (block**2).sum(1)[:, None] - 2 * block @ c.T + (c**2).sum(1)[None, :]
        idx = np.argpartition(d, min(k, len(c)) - 1, axis=1)[:, :k]
        out[start:start + 512] = codebook[idx].mean(1)
    return out


def convert(x: np.ndarray, target: SpeakerProfile, strength: float, neighbours: int, max_eq_db: float) -> np.ndarray:
    import pyworld

    f0, log_env, aperiodicity = _analyze(x)
    source = SpeakerProfile.measure(x, f0, log_env)
    active = _active_frames(x, len(f0))
    voiced = f0 > 0
    f0_out = f0.copy()
    f0_out[voiced] = np.exp((np.log(f0[voiced]) - source.log_f0_mean) / source.log_f0_std
                            * target.log_f0_std + target.log_f0_mean)

    ratios = target.formants / source.formants
    ratio = float(np.exp(np.nanmean(np.log(ratios)))) if np.isfinite(ratios).any() else 1.0
    log_env = _warp(log_env, float(np.clip(ratio, 0.8, 1.25)))

    n_bins = log_env.shape[1]
    ceps = _to_ceps(log_env)
    limit = max_eq_db / (20 / np.log(10))  # dB -> natural-log amplitude
    for mask, tgt_mean in ((voiced & active, target.voiced_ceps), (~voiced & active, target.unvoiced_ceps)):
        if mask.sum() == 0:
            continue
        eq = np.clip(_from_ceps(tgt_mean - ceps[mask].mean(0), n_bins), -limit, limit)
        log_env[mask] += eq - eq.mean()  # shape only: loudness stays the source's

    blend = voiced & active
    if strength > 0 and blend.any() and len(target.codebook) > 0:
        ceps = _to_ceps(log_env[blend])
        nearest = _nearest_mean(ceps, target.codebook, neighbours)
        nearest[:, 0] = ceps[:, 0]  # keep each frame's level
        log_env[blend] += strength * _from_ceps(nearest - ceps, n_bins)

    y = pyworld.synthesize(f0_out, np.ascontiguousarray(np.exp(log_env)), aperiodicity, RATE, FRAME_MS)
    y = y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
    peak = np.abs(y).max()
    return (y / peak * np.abs(x).max() if peak > 0 else y).astype(np.float32)


# --- the family -------------------------------------------------------------------------------


class WorldVC(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.VC})
    Options: ClassVar[type[FamilyOptions]] = WorldVCOptions
    options: WorldVCOptions

    def load(self) -> None:
        import parselmouth  # noqa: F401  (fail at load, not on the first request, if missing)
        import pyworld  # noqa: F401

        self._profiles: OrderedDict[str, SpeakerProfile] = OrderedDict()
        self._lock = threading.Lock()
        self.threads = blas_threads()  # WORLD itself is single-threaded; numpy's BLAS may not be
        t = np.arange(RATE) / RATE
        tone = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        warm = SpeakerReference(key="warm-up", audio=tone)
        self.convert_batch([VCInput(audio=tone, target=warm)])
        self._profiles.clear()

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=RATE, extra={"strength": self.options.strength})

    def validate(self, capability: Capability, item: VCInput) -> None:
        if len(item.audio) < RATE // 10:
            raise InvalidRequestError("the source audio is shorter than 0.1 s", param="file")

    def batch_key(self, capability: Capability, item: VCInput) -> tuple:
        return (item.target.key,)

    def convert_batch(self, items: list[VCInput]) -> list[VCOutput]:
        """WORLD runs one signal at a time: items are converted one after another."""
        out = []
        for item in items:
            profile = self.profile(item.target)
            strength = self.options.strength if item.strength is None else item.strength
            audio = convert(item.audio, profile, strength, self.options.neighbours, self.options.max_eq_db)
            out.append(VCOutput(audio=audio, sample_rate=RATE))
        return out

    def profile(self, ref: SpeakerReference) -> SpeakerProfile:
        with self._lock:
            cached = self._profiles.get(ref.key)
            if cached is not None:
                self._profiles.move_to_end(ref.key)
                return cached
        path = ref.profile_dir / f"{PROFILE_VERSION}.npz" if ref.profile_dir is not None else None
        profile = SpeakerProfile.load(path) if path is not None and path.exists() else None
        if profile is None:
            profile = self._measure(ref)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                profile.save(path)
        with self._lock:
            self._profiles[ref.key] = profile
            while len(self._profiles) > self.options.profile_cache_size:
                self._profiles.popitem(last=False)
        return profile

    def _measure(self, ref: SpeakerReference) -> SpeakerProfile:
        f0, log_env, _ = _analyze(ref.audio)
        profile = SpeakerProfile.measure(ref.audio, f0, log_env)
        voiced_s = len(profile.codebook) * FRAME_MS / 1000
        if voiced_s < self.options.min_reference_s and ref.key != "warm-up":
            raise InvalidRequestError(
                f"the target reference has {voiced_s:.1f} s of voiced speech; at least "
                f"{self.options.min_reference_s:g} s is needed", param="reference")
        return profile
