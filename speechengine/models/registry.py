"""The model-family registry: registering a family is one line in FAMILIES.

Modules are imported lazily, on first lookup, so the server imports only the families it serves
and a family's heavy libraries load only when its model does.
"""

from __future__ import annotations

import importlib
from functools import cache

from speechengine.models.base import ModelFamily

FAMILIES: dict[str, str] = {
    "faster-whisper": "speechengine.models.faster_whisper:FasterWhisper",
    "piper": "speechengine.models.piper:Piper",
    "silero-vad": "speechengine.models.silero_vad:SileroVAD",
    "dvector": "speechengine.models.dvector:DVector",
    "resemblyzer": "speechengine.models.resemblyzer_ge2e:Resemblyzer",
    "deepfilternet3": "speechengine.models.deepfilternet:DeepFilterNet3",
    "rnnoise": "speechengine.models.rnnoise:RNNoise",
    "world-vc": "speechengine.models.world_vc:WorldVC",
    "kokoro": "speechengine.models.kokoro:Kokoro",
}


@cache
def family_class(name: str) -> type[ModelFamily]:
    try:
        target = FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
