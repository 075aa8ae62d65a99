"""Log configuration: loguru for our lines and for uvicorn's (intercepted from std logging), as
text for people or JSON lines (``--log-format json``) for machines."""

from __future__ import annotations

import json
import logging
import sys

from loguru import logger


class _Intercept(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _json_sink(message) -> None:
    r = message.record
    line = {"time": r["time"].isoformat(), "level": r["level"].name, "message": r["message"],
            "logger": r["name"], **r["extra"]}
    if r["exception"] is not None:
        line["exception"] = "".join(message.record["exception"].__repr__())
    sys.stderr.write(json.dumps(line, default=str) + "\n")


def setup_logging(level: str, fmt: str) -> None:
    logger.remove()
    if fmt == "json":
        logger.add(_json_sink, level=level.upper())
    else:
        logger.add(sys.stderr, level=level.upper(),
                   format="<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | {message}")
    logging.basicConfig(handlers=[_Intercept()], level=logging.INFO, force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = [_Intercept()]
        logging.getLogger(name).propagate = False
