"""Resemblyzer speaker embeddings (GE2E LSTM encoder in torch, 256-d, 16 kHz; Apache-2.0).

Needs the ``torch`` extra (resemblyzer, torch==2.13.0, setuptools<81 for webrtcvad's
pkg_resources import). Each input is volume-normalised and has long silences trimmed (webrtcvad),
as resemblyzer's own ``preprocess_wav`` does, then cut into 1.6 s partial utterances.

Batches are native: the partials of every item in a batch share one LSTM forward pass (they all
have the same length), and each item's embedding is the L2-normalised mean of its own partials.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, EmbedInput, EmbedOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo

SAMPLE_RATE = 16000
DIM = 256


class ResemblyzerOptions(FamilyOptions):
    torch_threads: int = Field(0, ge=0, description="torch intra-op threads (process-wide); 0 = the platform's thread budget")
    partials_per_second: float = Field(1.3, gt=0.625, le=10, description="resemblyzer's `rate`")
    min_coverage: float = Field(0.75, gt=0, le=1)
    trim_silence: bool = Field(True, description="shorten long silences with webrtcvad before embedding")


class Resemblyzer(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.EMBED})
    Options: ClassVar[type[FamilyOptions]] = ResemblyzerOptions
    native_batching: ClassVar[bool] = True
    options: ResemblyzerOptions

    def load(self) -> None:
        import warnings

        import torch

        with warnings.catch_warnings():  # webrtcvad's pkg_resources import warns on every start
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import VoiceEncoder

        self.threads = self.options.torch_threads or self.platform.cpu_threads
        torch.set_num_threads(self.threads)
        path = self.weights
        if path.is_dir():
            path = path / "pretrained.pt"
        self.encoder = VoiceEncoder(device=self.platform.torch_device, verbose=False, weights_fpath=path)
        self.encoder.eval()
        noise = np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
        self.embed_batch([EmbedInput(audio=noise, sample_rate=SAMPLE_RATE)])

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=SAMPLE_RATE, extra={"dimensions": DIM})

    def validate(self, capability: Capability, item: EmbedInput) -> None:
        if item.sample_rate != SAMPLE_RATE:
            raise InvalidRequestError(f"resemblyzer input must be {SAMPLE_RATE} Hz, got {item.sample_rate}")

    def _preprocess(self, wav: np.ndarray) -> np.ndarray:
        from resemblyzer.audio import normalize_volume, trim_long_silences
        from resemblyzer.hparams import audio_norm_target_dBFS

        if np.any(wav):  # resemblyzer's normaliser divides by the RMS
            wav = normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
        wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
        if self.options.trim_silence:
            trimmed = trim_long_silences(wav)
            if len(trimmed) >= SAMPLE_RATE // 2:  # no speech found: embed the whole input instead
                wav = trimmed
        return wav

    def _partials(self, wav: np.ndarray) -> np.ndarray:
        from resemblyzer.audio import wav_to_mel_spectrogram

        wav_slices, mel_slices = self.encoder.compute_partial_slices(
            len(wav), self.options.partials_per_second, self.options.min_coverage)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = wav_to_mel_spectrogram(wav)
        return np.stack([mel[s] for s in mel_slices])

    def embed_batch(self, items: list[EmbedInput]) -> list[EmbedOutput]:
        import torch

        partials = [self._partials(self._preprocess(item.audio)) for item in items]
        with torch.inference_mode():
            mels = torch.from_numpy(np.concatenate(partials)).to(self.encoder.device)
            embeds = self.encoder(mels).cpu().numpy()
        out: list[EmbedOutput] = []
        start = 0
        for p in partials:
            mean = embeds[start:start + len(p)].mean(axis=0)
            start += len(p)
            norm = float(np.linalg.norm(mean))
            if not np.isfinite(norm) or norm == 0.0:
                raise ValueError("the encoder returned a degenerate vector")
            out.append(EmbedOutput(embedding=(mean / norm).astype(np.float32)))
        return out
