"""Summaries and the markdown table written to docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import dataclass

import numpy as np

from bench.workloads import Sample


@dataclass
class Row:
    workload: str
    system: str
    concurrency: int
    requests: int
    wall_s: float
    samples: list[Sample]

    @property
    def throughput(self) -> float:
        """Audio seconds handled per wall-clock second."""
        return sum(s.audio_s for s in self.samples) / self.wall_s

    def pct(self, attr: str, q: float) -> float:
        return float(np.percentile([getattr(s, attr) for s in self.samples], q))


@dataclass
class FairRow:
    """Short STT requests alone, then one after another while a 60-s transcription runs."""

    system: str
    short_alone_p50: float
    short_beside_p50: float
    short_beside_n: int
    long_alone: float
    long_beside: float


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def git_commit() -> str:
    """The checkout's short commit id, for the reports' headers."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(rows: list[Row], notes: list[str], fair: list[FairRow] = ()) -> str:
    out = [
        "# Benchmarks",
        "",
        f"Written by `python -m bench` on {datetime.date.today()} at commit {git_commit()}; machine: {_machine()}.",
        "All systems ran in one session on the same models, files and decoding settings. Machines here are",
        "noisy: read the ratios (same run), not the absolute numbers.",
        "",
        "Throughput = audio seconds handled per wall second (input audio for STT and VAD, produced audio",
        "for TTS). `x bare` = throughput / the bare library called in-process, one request at a time.",
        "",
    ]
    for workload in dict.fromkeys(r.workload for r in rows):
        mine = [r for r in rows if r.workload == workload]
        bare = next((r for r in mine if r.system == "bare library"), None)
        out += [f"## {workload}", "",
                "| system | concurrency | requests | throughput (audio s/s) | x bare | p50 latency (s) | p95 latency (s) | p50 TTFB (s) |",
                "|---|---|---|---|---|---|---|---|"]
        for r in mine:
            ratio = f"{r.throughput / bare.throughput:.2f}" if bare else "-"
            out.append(f"| {r.system} | {r.concurrency} | {r.requests} | {r.throughput:.1f} | {ratio} | "
                       f"{r.pct('latency', 50):.3f} | {r.pct('latency', 95):.3f} | {r.pct('ttfb', 50):.3f} |")
        out.append("")
    if fair:
        out += ["## Short requests beside a 60-s transcription", "",
                "4-s clips sent one after another, first alone, then while a 60-s transcription runs on the same",
                "model (target: beside <= 2x alone).", "",
                "| system | short p50 alone (s) | short p50 beside (s) | beside / alone | shorts sent beside | "
                "60-s alone (s) | 60-s beside (s) |",
                "|---|---|---|---|---|---|---|"]
        for f in fair:
            out.append(f"| {f.system} | {f.short_alone_p50:.3f} | {f.short_beside_p50:.3f} | "
                       f"{f.short_beside_p50 / f.short_alone_p50:.2f} | {f.short_beside_n} | {f.long_alone:.2f} | "
                       f"{f.long_beside:.2f} |")
        out.append("")
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    out += ["## Other benchmarks", "",
            "- Streaming, time to first audio byte vs the whole unstreamed response: `python -m bench.streaming`,",
            "  [benchmarks-streaming.md](benchmarks-streaming.md).",
            "- Executors (1 vs 2 `process` replicas; local vs process vs Ray overhead): `python -m bench.executors`,",
            "  [benchmarks-executors.md](benchmarks-executors.md).",
            "- Per-family real-time factors of the embedding and restoration models: `python -m bench.embed_restore_rtf`.",
            "- Live VAD streams, chunks of concurrent streams batched vs one per batch: `python -m bench.vad_stream`,",
            "  [benchmarks-vad-stream.md](benchmarks-vad-stream.md).",
            ""]
    return "\n".join(out)
