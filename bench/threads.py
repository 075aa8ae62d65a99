"""Thread budget benchmark on the real server: `python -m bench.threads [--out FILE] [--rounds N]`.

Whisper tiny.en (2 workers x 1 thread) and Piper (a 2-thread wide session, or two 1-thread narrow
ones for a batch), as config.yml sets them up, serve STT and TTS clients at the same time (4 of
each). Each model fits the cores alone; busy together they would run 4 intra-op threads on 2
cores. The same load runs against a server whose thread budget is the cores (the default) and one started with the budget bypassed (its workers
patched to hold nothing: a bench-only switch, no setting does this), alternating ``--rounds``
times so both see the same machine noise. Reports throughput and latency of each capability and
the budget's waits from /health.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench import workloads
from bench.servers import ROOT, Server, _spawn, free_port

# The server with the budget bypassed: every worker holds nothing around its calls.
BYPASS = ("import contextlib, sys; from speechengine.worker.worker import Worker; "
          "Worker._threads = lambda self, family: contextlib.nullcontext(); "
          "from speechengine.cli import main; main(sys.argv[1:])")

MODELS = ("whisper-tiny-en", "piper-joe")
CLIENTS, REQUESTS = 4, 12  # per capability


def config() -> dict:
    base = yaml.safe_load((ROOT / "config.yml").read_text())
    return {"voices": {}, "models": [m for m in base["models"] if m["id"] in MODELS]}


def start(path: Path, workdir: Path, bypass: bool) -> Server:
    port = free_port()
    head = ["-c", BYPASS] if bypass else ["-m", "speechengine"]
    proc, log = _spawn("speechengine", [sys.executable, *head, "serve", "--config", str(path), "--port", str(port),
                                        "--log-level", "warning"], workdir,
                       {"SPEECHENGINE_CACHE_DIR": str(workdir / "cache")})
    srv = Server("speechengine", f"http://127.0.0.1:{port}", proc, log)
    srv.wait("/health")
    return srv


async def mixed_load(base: str) -> dict:
    clips, texts = workloads.speech_clips(), workloads.SENTENCES
    results: dict[str, list] = {"stt": [], "tts": []}

    async def clients(kind: str, fn, items: list, model: str) -> float:
        counter = iter(range(REQUESTS))
        async with httpx.AsyncClient(timeout=600) as client:
            async def one() -> None:
                for i in counter:
                    results[kind].append(await fn(client, base, items[i % len(items)], model))

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(CLIENTS)))
            return time.perf_counter() - t0

    async with httpx.AsyncClient(timeout=600) as warm:  # one of each first: no first-call costs in the numbers
        await workloads.stt_ours(warm, base, clips[0], MODELS[0])
        await workloads.tts_ours(warm, base, texts[0], MODELS[1])
    t0 = time.perf_counter()
    stt_wall, tts_wall = await asyncio.gather(clients("stt", workloads.stt_ours, clips, MODELS[0]),
                                              clients("tts", workloads.tts_ours, texts, MODELS[1]))
    wall = time.perf_counter() - t0
    out = {"wall": wall}
    for kind, kind_wall in (("stt", stt_wall), ("tts", tts_wall)):
        lat = sorted(s.latency for s in results[kind])
        out[kind] = {"audio_per_s": sum(s.audio_s for s in results[kind]) / kind_wall,
                     "p50": statistics.median(lat), "p95": lat[int(0.95 * (len(lat) - 1))]}
    return out


def run(bypass: bool, tmp: Path) -> dict:
    path = tmp / "threads.yml"
    path.write_text(yaml.safe_dump(config()))
    srv = start(path, tmp, bypass)
    try:
        result = asyncio.run(mixed_load(srv.base_url))
        result["health"] = httpx.get(srv.base_url + "/health").json()["threads"]
        return result
    finally:
        srv.stop()


def table(runs: dict[str, list[dict]]) -> str:
    rows = ["| budget | round | STT audio s/s | STT p50 s | STT p95 s | TTS audio s/s | TTS p50 s | TTS p95 s "
            "| budget waits | peak threads |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, results in runs.items():
        for i, r in enumerate(results, 1):
            h = r["health"]
            rows.append(f"| {name} | {i} | {r['stt']['audio_per_s']:.1f} | {r['stt']['p50']:.2f} | "
                        f"{r['stt']['p95']:.2f} | {r['tts']['audio_per_s']:.1f} | {r['tts']['p50']:.2f} | "
                        f"{r['tts']['p95']:.2f} | {h['waits']} | {h['peak']} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-threads.md")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"cores (default)": [], "bypassed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            runs["cores (default)"].append(run(False, Path(tmp)))
            runs["bypassed"].append(run(True, Path(tmp)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    text = (f"# Thread budget benchmark\n\nMeasured by `python -m bench.threads` on {platform.machine()}, "
            f"{len(os.sched_getaffinity(0))} cores, {time.strftime('%Y-%m-%d')}, commit {commit}.\n\n"
            f"whisper-tiny-en (2 workers x 1 thread, beam 5) and piper-joe (a 2-thread wide session, "
            f"1-thread narrow ones for batches) from config.yml, {CLIENTS} STT clients and {CLIENTS} TTS clients at once, {REQUESTS} requests "
            f"each; configurations alternate round by round.\n\n{table(runs)}\n")
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
