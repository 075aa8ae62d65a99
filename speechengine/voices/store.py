"""The voice store: custom voices on disk under ``<data_dir>/voices``.

An SQLite index (``index.sqlite``) holds id, name, consent and creation time; each voice has a
folder with the upload as sent (``original``), the sample as 16 kHz mono WAV (``sample.wav``,
what conversion reads) and ``profiles/``, where voice-conversion families cache what they
derive from the sample. Everything survives restarts. Sample checks (decodable, size, length,
enough speech) happen before anything is written.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechengine.capabilities import SpeakerReference
from speechengine.errors import NotFoundError

RATE = 16000


@dataclass(frozen=True)
class SavedVoice:
    id: str
    name: str
    created_at: int
    consent: str
    duration: float

    def to_body(self) -> dict:
        return {"id": self.id, "object": "audio.voice", "created_at": self.created_at, "name": self.name,
                "type": "audio_sample"}


class VoiceNotFoundError(NotFoundError):
    code = "voice_not_found"


class VoiceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "index.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS voices (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL,"
            " consent TEXT NOT NULL, duration REAL NOT NULL)"
        )

    def close(self) -> None:
        self._db.close()

    def _folder(self, voice_id: str) -> Path:
        return self.root / voice_id

    def create(self, name: str, consent: str, original: bytes, audio: np.ndarray) -> SavedVoice:
        """Save a checked sample (``audio``: mono float32 at 16 kHz) under a new id."""
        voice = SavedVoice(id="voice_" + secrets.token_hex(12), name=name, created_at=int(time.time()),
                           consent=consent, duration=round(len(audio) / RATE, 3))
        folder = self._folder(voice.id)
        tmp = self.root / f".{voice.id}.tmp"
        (tmp / "profiles").mkdir(parents=True)
        (tmp / "original").write_bytes(original)
        sf.write(tmp / "sample.wav", audio, RATE, subtype="FLOAT")
        tmp.rename(folder)
        with self._lock:
            self._db.execute("INSERT INTO voices VALUES (?, ?, ?, ?, ?)",
                             (voice.id, voice.name, voice.created_at, voice.consent, voice.duration))
        return voice

    def list(self) -> list[SavedVoice]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, created_at, consent, duration FROM voices "
                                    "ORDER BY created_at, id").fetchall()
        return [SavedVoice(*r) for r in rows]

    def get(self, voice_id: str, *, param: str = "voice") -> SavedVoice:
        with self._lock:
            row = self._db.execute("SELECT id, name, created_at, consent, duration FROM voices WHERE id = ?",
                                   (voice_id,)).fetchone()
        if row is None:
            raise VoiceNotFoundError(f"custom voice {voice_id!r} does not exist", param=param)
        return SavedVoice(*row)

    def delete(self, voice_id: str) -> None:
        self.get(voice_id, param="voice_id")
        with self._lock:
            self._db.execute("DELETE FROM voices WHERE id = ?", (voice_id,))
        shutil.rmtree(self._folder(voice_id), ignore_errors=True)

    def reference(self, voice_id: str, *, param: str = "voice") -> SpeakerReference:
        """The saved voice as a conversion target (blocking: reads the sample)."""
        self.get(voice_id, param=param)
        audio, _ = sf.read(self._folder(voice_id) / "sample.wav", dtype="float32")
        return SpeakerReference(key=f"voice:{voice_id}", audio=audio, profile_dir=self._folder(voice_id) / "profiles")
