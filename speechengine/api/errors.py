"""The one place errors become HTTP responses, always in OpenAI's error body.

Typed SpeechEngineErrors carry their own status; FastAPI/Starlette errors (validation, unknown
route, wrong method) are mapped here so that ``{"detail": ...}`` never reaches a client.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from speechengine.errors import InvalidRequestError, SpeechEngineError


def error_response(exc: SpeechEngineError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status, headers=exc.headers())


def validation_error(errors: list[dict], *, skip: tuple[str, ...] = ("body", "query", "path")) -> InvalidRequestError:
    """Turn pydantic errors into one 400 naming the first bad field."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if str(p) not in skip]
    param = loc[0] if loc else None
    where = ".".join(loc)
    msg = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        msg = "is required"
    elif first.get("type") == "json_invalid":
        return InvalidRequestError("the request body is not valid JSON")
    return InvalidRequestError(f"{where}: {msg}" if where else msg, param=param)


def parse_model(model_cls, data: dict):
    """Validate ``data`` into ``model_cls`` or raise a 400 InvalidRequestError."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        raise validation_error(e.errors()) from None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SpeechEngineError)
    async def _typed(request: Request, exc: SpeechEngineError) -> JSONResponse:
        if exc.status >= 500:
            logger.error("{} {} -> {}: {}", request.method, request.url.path, exc.status, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        logger.opt(exception=exc).error("unhandled error on {} {}", request.method, request.url.path)
        body = {"error": {"message": f"internal error: {type(exc).__name__}", "type": "server_error",
                          "param": None, "code": None}}
        return JSONResponse(body, status_code=500)
