"""The async engine: typed requests in, results out; owns deployments and their lifetimes."""

from speechengine.engine.engine import AsyncEngine
from speechengine.engine.deployment import Deployment, ModelStatus
from speechengine.engine.vad_stream import VADStream, VADStreamOptions

__all__ = ["AsyncEngine", "Deployment", "ModelStatus", "VADStream", "VADStreamOptions"]
