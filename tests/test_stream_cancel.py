"""Clients that go away mid-stream: their queued work is dropped, nothing leaks, the server goes on.

The app runs under a real uvicorn on 127.0.0.1 in a thread of this process (real Piper and Whisper
from config.yml), so the tests can look inside its event loop: scheduler queues, asyncio tasks,
threads. Clients are the openai SDK and httpx over real sockets.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from speechengine.api import create_app
from speechengine.audio import decode_audio
from speechengine.config import load_settings
from tests.audio_utils import decode, encode_file
from tests.conftest import FIXTURES, ROOT
from tests.live_server import LiveServer

TTS, STT = "piper-joe", "whisper-tiny-en"
TEXT = " ".join(f"Here is sentence number {n}." for n in range(1, 7))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    settings = load_settings(ROOT / "config.yml")
    # greedy decoding keeps the long transcriptions here quick; streaming does not depend on it
    models = [m if m.id != STT else m.model_copy(update={"options": {**m.options, "beam_size": 1}})
              for m in settings.models if m.id in (TTS, STT)]
    srv = LiveServer(create_app(settings.model_copy(update={"models": models,
                                                            "cache_dir": tmp_path_factory.mktemp("cache")})))
    with srv:
        yield srv


@pytest.fixture(scope="module")
def sdk(live):
    from openai import OpenAI

    with OpenAI(base_url=live.base_url + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def five_windows() -> bytes:
    """jfk.flac five times, 30 s apart: five of Whisper's 30 s windows, decoded one after another,
    so a stream has segments left to skip. (Back-to-back repeats would make Whisper retry each
    window at higher temperatures, for the repetition: slow and beside the point.)"""
    jfk = decode_audio((FIXTURES / "jfk.flac").read_bytes(), 16000)
    gap = np.zeros(30 * 16000 - len(jfk), np.float32)
    return encode_file(np.concatenate([jfk, gap] * 4 + [jfk]), 16000, "wav", "pcm_s16le")


def abort_speech_after_first_chunk(sdk, fmt: str = "mp3") -> bytes:
    with sdk.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=TEXT,
                                                         response_format=fmt) as resp:
        return next(resp.iter_bytes())


def abort_speech_sse_after_first_event(base_url: str) -> str:
    with httpx.stream("POST", base_url + "/v1/audio/speech", timeout=120, json={
            "model": "tts-1", "voice": "alloy", "input": TEXT, "stream_format": "sse"}) as r:
        return next(line for line in r.iter_lines() if line)


def abort_transcription_after_first_event(sdk, audio: bytes) -> str:
    stream = sdk.audio.transcriptions.create(model=STT, file=("speech.wav", audio), stream=True)
    try:
        return next(iter(stream)).type
    finally:
        stream.close()


def test_aborted_speech_streams_leave_the_queue_empty_and_the_server_serving(live, sdk):
    pieces_per_stream = 6
    sched = live.app.state.engine.resolve(TTS).scheduler
    before = live.inspect(lambda: (sched.stats.completed, sched.stats.cancelled))
    with ThreadPoolExecutor(20) as pool:
        firsts = list(pool.map(lambda _: abort_speech_after_first_chunk(sdk), range(20)))
    assert all(len(f) > 0 for f in firsts)
    live.wait_until(live.idle)
    completed, cancelled = (a - b for a, b in zip(live.inspect(lambda: (sched.stats.completed,
                                                                         sched.stats.cancelled)), before))
    assert cancelled >= 1  # queued pieces of gone clients were dropped...
    assert completed < 20 * pieces_per_stream  # ...and never synthesized
    # and the server answers normally, streamed and not
    whole = sdk.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav",
                                    extra_body={"stream": False})
    assert decode(whole.content).duration > 5
    with sdk.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=TEXT,
                                                         response_format="wav") as resp:
        assert decode(resp.read()).duration == pytest.approx(decode(whole.content).duration, rel=0.05)


def thread_census() -> tuple[dict[str, int], set[str], list[str]]:
    """Threads of this process: counts per pool, names of the others, and pool threads not idle.

    An idle pool thread waits for work: ThreadPoolExecutor's in ``_worker`` (on a SimpleQueue),
    anyio's in ``Condition.wait`` of its queue.
    """
    frames = sys._current_frames()
    pools: dict[str, int] = {}
    others: set[str] = set()
    busy: list[str] = []
    for t in threading.enumerate():
        pool = next((p for p in ("asyncio", "worker-", "AnyIO worker thread") if t.name.startswith(p)), None)
        if pool is None:
            others.add(t.name)
            continue
        name = t.name.rsplit("_", 1)[0] if pool != "AnyIO worker thread" else pool
        pools[name] = pools.get(name, 0) + 1
        frame = frames.get(t.ident)
        if frame is not None and frame.f_code.co_name not in ("_worker", "wait"):
            busy.append(f"{t.name} in {frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
    return pools, others, busy


def test_fifty_aborted_streams_leak_no_tasks_and_no_threads(live, sdk, jfk_bytes):
    kinds = [
        lambda: abort_speech_after_first_chunk(sdk, "opus"),
        lambda: abort_speech_sse_after_first_event(live.base_url),
        lambda: abort_transcription_after_first_event(sdk, jfk_bytes),
        lambda: abort_speech_after_first_chunk(sdk, "wav"),
        lambda: abort_speech_after_first_chunk(sdk, "flac"),
    ]
    for kind in kinds:  # warm up every path once, so lazily created loops and pools exist
        kind()
    live.wait_until(live.idle)
    baseline_tasks = live.settled_task_count()
    _, baseline_others, _ = thread_census()

    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda i: kinds[i % len(kinds)](), range(50)))

    live.wait_until(live.idle, timeout=60)
    assert live.settled_task_count() <= baseline_tasks
    # Thread pools (the loop's default executor, model workers, anyio's) may have grown to serve
    # five clients at once, within their bounds; no other thread appeared and none is still busy.
    pools, others, busy = thread_census()
    assert others == baseline_others
    assert pools.get("asyncio", 0) <= min(32, (os.cpu_count() or 1) + 4)  # the loop's default executor
    workers = {m.id: m.workers for m in load_settings(ROOT / "config.yml").models}
    assert pools.get(f"worker-{TTS}", 0) <= workers[TTS] and pools.get(f"worker-{STT}", 0) <= workers[STT]
    assert pools.get("AnyIO worker thread", 0) <= 40  # anyio's default thread limiter
    assert busy == [], f"threads still working after every stream ended: {busy}"
    # the server still works end to end
    heard = sdk.audio.transcriptions.create(model=STT, file=("jfk.flac", jfk_bytes))
    assert "country" in heard.text


def test_an_aborted_transcription_stops_decoding_at_the_next_window(live, sdk, five_windows, monkeypatch):
    family = live.app.state.engine.resolve(STT).executor.worker.family
    decoded: list[int] = []  # the seek of each window the worker decodes
    real = family.transcribe_steps

    def observed(steps):  # the real model, watched: records the windows it decodes
        decoded.extend(step.seek for step in steps)
        return real(steps)

    monkeypatch.setattr(family, "transcribe_steps", observed)
    events = list(sdk.audio.transcriptions.create(model=STT, file=("speech.wav", five_windows), stream=True))
    total = len(decoded)
    assert total >= 5 and len(events) >= 6  # a delta per segment, then done

    decoded.clear()
    assert abort_transcription_after_first_event(sdk, five_windows) == "transcript.text.delta"
    live.wait_until(live.idle)
    # the first window's segments went out; the window after it may have been decoding when the
    # client left, and then no other: its successors were never submitted
    assert 1 <= len(decoded) <= 2 < total
