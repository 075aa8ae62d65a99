"""Render an STTOutput in OpenAI's transcription response formats: json, text, srt, vtt, verbose_json."""

from __future__ import annotations

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from speechengine.capabilities import STTOutput
from speechengine.languages import language_name

TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(out: STTOutput) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(min(s.end, out.duration), ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(out.segments, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(out: STTOutput) -> str:
    cues = [
        f"{_clock(s.start, '.')} --> {_clock(min(s.end, out.duration), '.')}\n{s.text.strip()}\n"
        for s in out.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def _usage(out: STTOutput) -> dict:
    return {"type": "duration", "seconds": round(out.duration, 3)}


def to_verbose(out: STTOutput, task: str, granularities: set[str]) -> dict:
    body: dict = {
        "task": task,
        "language": language_name(out.language),
        "duration": round(out.duration, 3),
        "text": out.text,
    }
    if "segment" in granularities:
        body["segments"] = [
            {
                "id": s.id, "seek": s.seek, "start": round(s.start, 3), "end": round(min(s.end, out.duration), 3),
                "text": s.text, "tokens": list(s.tokens), "temperature": s.temperature,
                "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in out.segments
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(min(w.end, out.duration), 3)}
            for w in out.words
        ]
    body["usage"] = _usage(out)
    return body


def render(out: STTOutput, fmt: str, task: str, granularities: set[str]) -> Response:
    if fmt == "json":
        return JSONResponse({"text": out.text, "usage": _usage(out)})
    if fmt == "verbose_json":
        return JSONResponse(to_verbose(out, task, granularities))
    if fmt == "text":
        return PlainTextResponse(out.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(to_srt(out), media_type="application/x-subrip")
    return PlainTextResponse(to_vtt(out), media_type="text/vtt")
