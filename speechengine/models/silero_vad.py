"""Silero VAD v6 (ONNX, the copy faster-whisper ships): speech segments of an audio file or a live stream.

Speech probabilities come from the ONNX model per 32 ms frame; the segmentation on top
(hysteresis, minimum silence and speech, padding; speechengine/speech_segments.py) is ours so
that it honours the configured weights and request options.

Whole files run as one call each (the file's frames are the model's time axis), so a batch of
files loops over its items. Live streams come in chunks (``detect_chunks``) and chunks of many
streams run as one call: the shipped graph feeds its LSTM a batch of one, so at load we insert a
Reshape before the LSTM that turns the rows (time-major: frame 0 of every stream, then frame 1...)
into (time, streams, 128), and let the h/c state carry one row per stream. The weights and every
other node are the file's own, so a streamed file gets the same probabilities as the whole file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

import numpy as np

from speechengine.capabilities import Capability, VADChunkInput, VADChunkOutput, VADInput, VADOutput
from speechengine.models.base import FamilyOptions, ModelFamily, ModelInfo
from speechengine.speech_segments import Segmenter

SAMPLE_RATE = 16000
WINDOW = 512  # samples per probability (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous frame the model sees before each frame
HIDDEN = 128  # LSTM state size


class SileroVAD(ModelFamily):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.VAD})
    Options: ClassVar[type[FamilyOptions]] = FamilyOptions
    native_batching: ClassVar[bool] = False  # whole files loop; stream chunks batch (detect_chunks)

    def load(self) -> None:
        import onnxruntime
        from faster_whisper.vad import SileroVADModel

        path = self.weights
        if path.is_dir():
            path = next(iter(sorted(path.glob("silero_vad*.onnx"))), path / "silero_vad_v6.onnx")
        self.model = SileroVADModel(str(path))
        opts = onnxruntime.SessionOptions()  # as faster-whisper's own session: one thread
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self.streams = onnxruntime.InferenceSession(_stream_batched_graph(str(path)), sess_options=opts,
                                                    providers=["CPUExecutionProvider"])
        self.threads = 1  # both sessions (faster-whisper's and the streamed one) have one intra-op thread
        self.detect_batch([VADInput(audio=np.zeros(SAMPLE_RATE, np.float32))])
        self.detect_chunks([VADChunkInput(audio=np.zeros(WINDOW, np.float32))] * 2)

    def info(self) -> ModelInfo:
        return ModelInfo(sample_rate=SAMPLE_RATE, frame_samples=WINDOW)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        padded = np.pad(audio, (0, (-len(audio)) % WINDOW or 0))
        if len(padded) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(self.model(padded)).reshape(-1)

    def detect_batch(self, items: list[VADInput]) -> list[VADOutput]:
        return [self._detect(item) for item in items]

    def _detect(self, item: VADInput) -> VADOutput:
        duration = len(item.audio) / SAMPLE_RATE
        segmenter = Segmenter(frame_samples=WINDOW, sample_rate=SAMPLE_RATE, threshold=item.threshold,
                              min_silence_ms=item.min_silence_duration_ms, min_speech_ms=item.min_speech_duration_ms,
                              pad_ms=item.speech_pad_ms)
        segmenter.push(self.probabilities(item.audio), duration)
        segmenter.finish(duration)
        return VADOutput(duration=duration, segments=tuple(segmenter.segments))

    def detect_chunks(self, items: list[VADChunkInput]) -> list[VADChunkOutput]:
        """The next frames of several streams; streams with as many frames share one ONNX call."""
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            if len(item.audio) % WINDOW:
                raise ValueError(f"a chunk must be whole frames of {WINDOW} samples, got {len(item.audio)}")
            by_length[len(item.audio) // WINDOW].append(index)
        outputs: list[VADChunkOutput | None] = [None] * len(items)
        for frames, members in by_length.items():
            for index, out in zip(members, self._run_streams([items[i] for i in members], frames)):
                outputs[index] = out
        return outputs

    def _run_streams(self, items: list[VADChunkInput], frames: int) -> list[VADChunkOutput]:
        zero = np.zeros(CONTEXT, np.float32), np.zeros(HIDDEN, np.float32), np.zeros(HIDDEN, np.float32)
        states = [item.state if item.state is not None else zero for item in items]
        if frames == 0:
            return [VADChunkOutput(np.zeros(0, np.float32), state) for state in states]
        rows = np.empty((frames, len(items), CONTEXT + WINDOW), np.float32)  # time-major
        for b, (item, state) in enumerate(zip(items, states)):
            windows = item.audio.reshape(frames, WINDOW)
            rows[:, b, CONTEXT:] = windows
            rows[0, b, :CONTEXT] = state[0]
            rows[1:, b, :CONTEXT] = windows[:-1, -CONTEXT:]
        h = np.stack([state[1] for state in states])[None]
        c = np.stack([state[2] for state in states])[None]
        probs, hn, cn = self.streams.run(None, {"input": rows.reshape(-1, CONTEXT + WINDOW), "h": h, "c": c})
        probs = np.asarray(probs).reshape(len(items), frames)
        return [
            VADChunkOutput(probs[b].copy(), (item.audio[-CONTEXT:].copy(), hn[0, b].copy(), cn[0, b].copy()))
            for b, item in enumerate(items)
        ]

def _stream_batched_graph(path: str) -> bytes:
    """The model with a stream axis: a Reshape (rows -> time x streams x 128) before its LSTM, whose
    h/c inputs and outputs then hold one state per stream."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    lstm = next(n for n in graph.node if n.op_type == "LSTM")
    graph.initializer.extend(numpy_helper.from_array(np.array([v], np.int64), name)
                             for name, v in (("sb_1", 1), ("sb_2", 2), ("sb_time", -1), ("sb_hidden", HIDDEN)))
    added = [
        helper.make_node("Shape", [lstm.input[5]], ["sb_state_shape"]),
        helper.make_node("Slice", ["sb_state_shape", "sb_1", "sb_2"], ["sb_streams"]),
        helper.make_node("Concat", ["sb_time", "sb_streams", "sb_hidden"], ["sb_shape"], axis=0),
        helper.make_node("Reshape", [lstm.input[0], "sb_shape"], ["sb_rows_by_stream"]),
    ]
    at = list(graph.node).index(lstm)
    for offset, node in enumerate(added):
        graph.node.insert(at + offset, node)
    lstm.input[0] = "sb_rows_by_stream"
    state_names = {lstm.input[5], lstm.input[6], lstm.output[1], lstm.output[2]}
    for value in (*graph.input, *graph.output):
        if value.name in state_names:
            dim = value.type.tensor_type.shape.dim[1]
            dim.ClearField("dim_value")
            dim.dim_param = "streams"
    onnx.checker.check_model(model)
    return model.SerializeToString()
