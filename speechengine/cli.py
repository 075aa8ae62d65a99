"""The ``speechengine`` command: serve the API, or inspect configured models."""

from __future__ import annotations

import argparse
import sys

from speechengine import __version__
from speechengine.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="speechengine",
        description="Multi-model speech inference server with an OpenAI-compatible REST API "
        "(TTS, STT, translation, VAD). Settings come from a YAML config file; any setting can be "
        "overridden with SPEECHENGINE_<NAME> environment variables.",
    )
    p.add_argument("--version", action="version", version=f"speechengine {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="start the HTTP server", description="Load the configured models and serve "
                       "the OpenAI-compatible API (/v1/audio/*, /v1/models, /health).")
    s.add_argument("--config", "-c", default="config.yml", help="YAML config file (default: %(default)s)")
    s.add_argument("--host", help="address to bind (default: config 'host', 127.0.0.1)")
    s.add_argument("--port", type=int, help="port to bind (default: config 'port', 12080)")
    s.add_argument("--log-level", choices=["trace", "debug", "info", "warning", "error"],
                   help="log level (default: config 'log_level', info)")

    m = sub.add_parser("models", help="inspect configured models")
    msub = m.add_subparsers(dest="models_command", required=True)
    ml = msub.add_parser("list", help="list configured models and where their weights come from")
    ml.add_argument("--config", "-c", default="config.yml", help="YAML config file (default: %(default)s)")
    return p


def _load(path: str):
    from speechengine.config import load_settings

    try:
        return load_settings(path)
    except ConfigError as e:
        print(f"speechengine: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> None:
    import uvicorn
    from loguru import logger

    from speechengine.api import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("log_level", args.log_level)) if v}
    settings = _load(args.config).model_copy(update=overrides)
    logger.remove()
    logger.add(sys.stderr, level=settings.log_level.upper())
    logger.info("serving {} model(s) from {} on http://{}:{}", len(settings.models), args.config,
                settings.host, settings.port)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="debug" if settings.log_level == "trace" else settings.log_level,
                access_log=False,  # our middleware logs each request with its id
                timeout_graceful_shutdown=10)


def _models_list(args: argparse.Namespace) -> None:
    from speechengine.models.registry import family_class
    from speechengine.weights import describe_source

    settings = _load(args.config)
    rows = [("id", "family", "capabilities", "aliases", "weights")]
    for m in settings.models:
        caps = ",".join(sorted(c.value for c in family_class(m.family).capabilities))
        rows.append((m.id, m.family, caps, ",".join(m.aliases) or "-", describe_source(m.weights)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        _serve(args)
    elif args.command == "models" and args.models_command == "list":
        _models_list(args)


if __name__ == "__main__":
    main()
