"""The frame-by-frame segmenter: the same segments however the frames arrive, the same as the
whole-file segmentation it replaced (kept here as the oracle), and events that never take back."""

from __future__ import annotations

import numpy as np
import pytest

from speechengine.speech_segments import Segmenter, SpeechStarted, SpeechStopped

RATE, FRAME = 16000, 512


def oracle(probs, duration, threshold, min_silence_ms, min_speech_ms, pad_ms):
    """The whole-file segmentation as it was before streaming (silero_vad.speech_spans + padding)."""
    min_silence = min_silence_ms * RATE / 1000 / FRAME
    min_speech = min_speech_ms * RATE / 1000 / FRAME
    low = max(threshold - 0.15, 0.01)
    spans, start, silent_since = [], None, None
    for i, p in enumerate(probs):
        if start is None:
            if p >= threshold:
                start, silent_since = i, None
            continue
        if p < low:
            if silent_since is None:
                silent_since = i
            if i + 1 - silent_since >= max(min_silence, 1):
                spans.append((start, silent_since))
                start, silent_since = None, None
        elif p >= threshold:
            silent_since = None
    if start is not None:
        spans.append((start, silent_since if silent_since is not None else len(probs)))
    spans = [(a, b) for a, b in spans if b - a >= max(min_speech, 1)]
    pad, win, out = pad_ms / 1000, FRAME / RATE, []
    for a, b in spans:
        s, e = max(0.0, a * win - pad), min(duration, b * win + pad)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return [(round(s, 3), round(e, 3)) for s, e in out]


def speechy(rng, n):
    """Probabilities with runs of speech and silence and some dithering between the thresholds."""
    probs, speaking = [], False
    while len(probs) < n:
        run = int(rng.integers(1, 40))
        level = rng.uniform(0.55, 1.0, run) if speaking else rng.uniform(0.0, 0.45, run)
        probs.extend(level)
        speaking = not speaking
    return np.asarray(probs[:n], np.float32)


@pytest.mark.parametrize("seed", range(40))
def test_stream_matches_whole_file_oracle(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    probs = speechy(rng, n)
    samples = n * FRAME - int(rng.integers(0, FRAME))  # the last frame may be partly padding
    duration = samples / RATE
    opts = dict(threshold=float(rng.choice([0.3, 0.5, 0.7])),
                min_silence_ms=int(rng.choice([0, 32, 96, 100, 500])),
                min_speech_ms=int(rng.choice([0, 64, 250])),
                pad_ms=int(rng.choice([0, 30, 100, 400])))
    expected = oracle(probs, duration, opts["threshold"], opts["min_silence_ms"], opts["min_speech_ms"],
                      opts["pad_ms"])

    seg = Segmenter(frame_samples=FRAME, sample_rate=RATE, threshold=opts["threshold"],
                    min_silence_ms=opts["min_silence_ms"], min_speech_ms=opts["min_speech_ms"], pad_ms=opts["pad_ms"])
    events, pos = [], 0
    while pos < n - 1:  # all but the last frame arrive in random pieces, as full frames of audio
        step = int(rng.integers(0, 6))
        piece = probs[pos:min(pos + step, n - 1)]
        pos += len(piece)
        events += seg.push(piece, pos * FRAME / RATE)
    events += seg.push(probs[pos:], duration)
    events += seg.finish(duration)

    assert [(s.start, s.end) for s in seg.segments] == expected
    stops = [(e.start, e.end) for e in events if isinstance(e, SpeechStopped)]
    starts = [e.start for e in events if isinstance(e, SpeechStarted)]
    assert stops == expected
    assert starts == [s for s, _ in expected]
    open_segment = None  # started and stopped alternate, each stop closing the segment its start opened
    for e in events:
        if isinstance(e, SpeechStarted):
            assert open_segment is None
            open_segment = e.start
        else:
            assert open_segment == e.start
            open_segment = None
