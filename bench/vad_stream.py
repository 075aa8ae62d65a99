"""Live VAD streams (WebSocket /v1/audio/vad/stream): throughput of N concurrent streams with
their chunks batched together vs one chunk per batch.

    python -m bench.vad_stream                      # starts its own server on a free port
    python -m bench.vad_stream --streams 1 4 8 16 --chunk-ms 20 100 --runs 3

The server serves the Silero model twice: ``silero-vad`` (max_batch_size 16) and ``silero-vad-b1``
(max_batch_size 1). N clients each send ``--repeat`` x 15 s of speech (JFK between silences) as
PCM16 in ``--chunk-ms`` pieces as fast as the server takes them, then "end", and wait for "done".
The real-time factor is the audio of all streams divided by the wall time (higher is better); the
mean batch size comes from the server's metrics. For scale, the same audio is also sent whole to
POST /v1/audio/vad. Writes docs/benchmarks-vad-stream.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from bench.report import git_commit
from bench.servers import start_speechengine

ROOT = Path(__file__).resolve().parent.parent
SILERO = "{package: faster_whisper, path: assets/silero_vad_v6.onnx}"
CONFIG = f"""
models:
  - {{id: silero-vad, family: silero-vad, weights: {SILERO}, max_batch_size: 16, max_wait_ms: 2, queue_limit: 256}}
  - {{id: silero-vad-b1, family: silero-vad, weights: {SILERO}, max_batch_size: 1, queue_limit: 256}}
"""
MODELS = {"silero-vad": "batched (max_batch_size 16)", "silero-vad-b1": "max_batch_size 1"}


def speech() -> np.ndarray:
    """15 s of PCM16: JFK (tests/fixtures) between 2 s silences."""
    import av

    from speechengine.audio import resample

    with av.open(str(ROOT / "tests" / "fixtures" / "jfk.flac")) as c:
        stream = c.streams.audio[0]
        rate = stream.rate
        to_float = av.AudioResampler(format="fltp")
        x = np.concatenate([out.to_ndarray()[0] for f in c.decode(stream) for out in to_float.resample(f)])
    x = resample(x.astype(np.float32), rate, 16000)
    pad = np.zeros(32000, np.float32)
    return np.clip(np.round(np.concatenate([pad, x, pad]) * 32767), -32768, 32767).astype("<i2")


def batch_sizes(url: str, model: str) -> tuple[float, float]:
    """(batches, items) the server's VAD batch-size histogram has counted for ``model``."""
    count = total = 0.0
    for fam in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for s in fam.samples:
            if s.labels.get("model") == model and s.labels.get("capability") == "vad":
                if s.name == "speechengine_batch_size_count":
                    count = s.value
                elif s.name == "speechengine_batch_size_sum":
                    total = s.value
    return count, total


async def one_stream(url: str, model: str, pcm: np.ndarray, step: int) -> int:
    headers = {"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"} if os.environ.get("OPENAI_API_KEY") else {}
    ws_url = url.replace("http://", "ws://") + f"/v1/audio/vad/stream?model={model}"
    async with connect(ws_url, additional_headers=headers, max_size=None) as ws:
        async def send() -> None:
            for i in range(0, len(pcm), step):
                await ws.send(pcm[i:i + step].tobytes())
            await ws.send(json.dumps({"type": "end"}))

        sender = asyncio.create_task(send())
        async for message in ws:
            event = json.loads(message)
            if event["type"] == "error":
                raise SystemExit(f"stream failed: {event}")
            if event["type"] == "done":
                await sender
                return len(event["segments"])
    raise SystemExit("the stream closed without 'done'")


async def run(url: str, model: str, pcm: np.ndarray, streams: int, step: int) -> float:
    t0 = time.perf_counter()
    await asyncio.gather(*(one_stream(url, model, pcm, step) for _ in range(streams)))
    return time.perf_counter() - t0


def whole_file(url: str, pcm: np.ndarray, runs: int) -> float:
    """Real-time factor of the same audio sent whole to POST /v1/audio/vad (median of ``runs``)."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, pcm, 16000, format="WAV", subtype="PCM_16")
    walls = []
    for _ in range(runs + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        r = httpx.post(url + "/v1/audio/vad", files={"file": ("a.wav", buf.getvalue())},
                       data={"model": "silero-vad"}, timeout=300)
        r.raise_for_status()
        walls.append(time.perf_counter() - t0)
    return len(pcm) / 16000 / statistics.median(walls[1:])


def measure(url: str, counts: list[int], chunks_ms: list[float], runs: int,
            repeat: int) -> tuple[list[dict], float]:
    pcm = np.tile(speech(), repeat)
    audio_s = len(pcm) / 16000
    rows = []
    whole = whole_file(url, pcm, runs)
    print(f"whole file through POST /v1/audio/vad: {whole:.0f}x real time", flush=True)
    for model in MODELS:
        asyncio.run(run(url, model, pcm, 1, 1600))  # warm-up
    for chunk_ms, n in itertools.product(chunks_ms, counts):
        step = int(chunk_ms * 16)
        walls: dict[str, list[float]] = {m: [] for m in MODELS}
        sizes: dict[str, list[float]] = {m: [] for m in MODELS}
        for _ in range(runs):  # the two settings alternate, so load from other jobs hits both alike
            for model in MODELS:
                b0, i0 = batch_sizes(url, model)
                walls[model].append(asyncio.run(run(url, model, pcm, n, step)))
                b1, i1 = batch_sizes(url, model)
                sizes[model].append((i1 - i0) / max(b1 - b0, 1))
        for model, label in MODELS.items():
            wall = statistics.median(walls[model])
            rows.append({"chunk_ms": chunk_ms, "streams": n, "model": model, "label": label, "wall": wall,
                         "rtf": n * audio_s / wall, "batch": statistics.mean(sizes[model])})
            print(f"{chunk_ms:4g} ms chunks {n:3d} streams  {label:28s} wall {wall:6.2f} s  "
                  f"{n * audio_s / wall:7.1f}x real time  mean batch {rows[-1]['batch']:.2f}", flush=True)
    return rows, whole


def write_report(rows: list[dict], whole: float, path: Path, runs: int, repeat: int) -> None:
    commit = git_commit()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Benchmark: live VAD streams, chunks batched across streams",
        "",
        f"`python -m bench.vad_stream` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{commit}`, "
        f"{platform.machine()} with {os.cpu_count()} cores (load average {load:.1f} at the end; the machine "
        f"was shared with other jobs, so compare the two columns of one row, not rows of different runs). "
        f"Silero VAD v6 on one local worker thread; each stream sends {15 * repeat} s of speech (JFK between 2 s "
        f"silences, {repeat} times) as PCM16 in pieces of the stated size as fast as the server takes them; "
        f"median wall time of {runs} runs, the two settings alternating. The clients run on the same machine "
        "and take CPU from the server.",
        "",
        "Real-time factor = seconds of audio of all streams / wall seconds (higher is better).",
        "",
        "| chunk | streams | batched: x real time | batched: mean batch | max_batch_size 1: x real time "
        "| batched / unbatched |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r["chunk_ms"], r["streams"], r["model"]): r for r in rows}
    for chunk_ms, n in sorted({(r["chunk_ms"], r["streams"]) for r in rows}):
        b, u = by[(chunk_ms, n, "silero-vad")], by[(chunk_ms, n, "silero-vad-b1")]
        lines.append(f"| {chunk_ms:g} ms | {n} | {b['rtf']:.0f} | {b['batch']:.1f} | {u['rtf']:.0f} "
                     f"| {b['rtf'] / u['rtf']:.2f} |")
    lines += [
        "",
        "A stream has one chunk in the scheduler at a time (the next chunk needs the state the previous "
        "returns), so with one stream every batch holds one chunk and the two settings do the same work: "
        "the difference in those rows is this run's noise. With several streams, the chunks that arrive "
        "while a batch runs form the next batch, and the family runs them as one ONNX call per distinct "
        "chunk length (100 ms pieces make chunks of 3 or 4 frames of 32 ms, so two calls; 20 ms pieces "
        "make one-frame chunks, one call) (docs/architecture.md, \"Live streams through a stateless worker\").",
        "",
        f"For scale: the same audio sent whole to POST /v1/audio/vad (one ONNX call for all its frames) ran "
        f"{whole:.0f}x real time in this run.",
        "",
    ]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server that serves silero-vad and silero-vad-b1 (default: start one)")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--chunk-ms", type=float, nargs="+", default=[20, 100])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=4, help="times the 15 s of speech are sent per stream")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-vad-stream.md")
    args = ap.parse_args()
    server = None
    url = args.url
    try:
        if url is None:
            tmp = Path(tempfile.mkdtemp(prefix="bench-vad-stream-"))
            (tmp / "config.yml").write_text(CONFIG)
            server = start_speechengine(tmp / "config.yml", tmp)
            url = server.base_url
        rows, whole = measure(url, args.streams, args.chunk_ms, args.runs, args.repeat)
    finally:
        if server is not None:
            server.stop()
    write_report(rows, whole, args.out, args.runs, args.repeat)


if __name__ == "__main__":
    main()
