"""Typed errors: each carries its HTTP status and OpenAI error type; one handler in api/ maps them.

Nothing here knows about HTTP frameworks, so engine, scheduler and models can raise these freely.
"""

from __future__ import annotations


class SpeechEngineError(Exception):
    """Base of every error a client may see. Subclasses fix status, type and code."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequestError(SpeechEngineError):
    status = 400
    type = "invalid_request_error"


class InvalidAudioError(InvalidRequestError):
    code = "invalid_audio"


class UnsupportedCapabilityError(InvalidRequestError):
    code = "model_not_supported"


class AuthenticationError(SpeechEngineError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFoundError(SpeechEngineError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class PayloadTooLargeError(SpeechEngineError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class QueueFullError(SpeechEngineError):
    status = 429
    type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ServiceUnavailableError(SpeechEngineError):
    status = 503
    type = "server_error"
    code = "service_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class ModelLoadError(ServiceUnavailableError):
    code = "model_load_failed"


class InferenceError(SpeechEngineError):
    """A model failed on input the API layer accepted: a real bug or a model limit, logged with a trace."""

    status = 500
    type = "server_error"
    code = "inference_failed"


class ConfigError(Exception):
    """Invalid configuration, raised at start-up before anything serves."""
