"""The HTTP edge: FastAPI app factory, one router module per capability, OpenAI error mapping."""

from speechengine.api.app import create_app

__all__ = ["create_app"]
