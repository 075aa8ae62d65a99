"""Audio I/O at the HTTP edge: decode any container to mono float32, encode to response formats."""

from speechengine.audio.decode import decode_audio, decode_audio_with_rate, resample
from speechengine.audio.encode import AUDIO_FORMATS, encode_audio, media_type

__all__ = ["AUDIO_FORMATS", "decode_audio", "decode_audio_with_rate", "encode_audio", "media_type", "resample"]
