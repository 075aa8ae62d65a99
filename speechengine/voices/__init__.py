"""Custom voices: saved speaker samples (SQLite index + files) that any TTS model can speak in."""

from speechengine.voices.store import SavedVoice, VoiceStore

__all__ = ["SavedVoice", "VoiceStore"]
