"""Typed server configuration: YAML file + SPEECHENGINE_* environment overrides, validated at start.

A model deployment names its family, where its weights come from, the device it runs on, its
batching limits and its family options. Family options are validated against the family's own
``Options`` model, so a typo in any field fails at start with the field's full path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from speechengine.capabilities import Capability
from speechengine.errors import ConfigError

Device = Literal["cpu", "cuda", "rocm", "auto"]
ExecutorKind = Literal["local", "process", "ray"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubWeights(_Strict):
    """A Hugging Face hub repository, downloaded through huggingface_hub into the cache dir."""

    hub: str = Field(description="repo id, e.g. Systran/faster-whisper-tiny.en")
    revision: str | None = None
    allow_patterns: list[str] | None = None


class LocalWeights(_Strict):
    """A file or directory on this machine."""

    local: Path


class PackageWeights(_Strict):
    """Weights carried by installed Python packages.

    ``path`` is taken inside each package; with several packages their folders are merged into
    one cache folder, and files split as ``NAME.part1``, ``NAME.part2``... are joined into ``NAME``.
    """

    package: str | list[str]
    path: str = ""


WeightsSource = Union[HubWeights, LocalWeights, PackageWeights]


class ModelConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    family: str
    weights: WeightsSource
    aliases: list[str] = []
    device: Device = "cpu"
    strict: bool = Field(False, description="fail at start when the device is not available (else: cpu + warning)")
    executor: ExecutorKind = Field("local", description="local threads, child processes, or Ray actors")
    replicas: int = Field(1, ge=1, le=64, description="process/ray: copies of the model, each in its own process")
    replica_threads: int = Field(
        1, ge=1, le=256, description="process/ray: intra-op threads per replica when the family options leave it to us"
    )
    num_cpus: float | None = Field(None, ge=0, description="ray: CPUs reserved per replica (default 1)")
    num_gpus: float | None = Field(None, ge=0, description="ray: GPUs reserved per replica (default 0)")
    preload: bool = True
    ttl_s: int = Field(-1, ge=-1, description="unload after this many idle seconds; -1 never, 0 as soon as idle")
    max_batch_size: int = Field(4, ge=1, le=256)
    max_wait_ms: float = Field(5.0, ge=0, le=10_000)
    queue_limit: int = Field(64, ge=1)
    workers: int = Field(1, ge=1, le=64, description="batches that may run at once in each replica")
    voices: dict[str, str] = Field(
        default_factory=dict, description="TTS only: request voice name (e.g. OpenAI's 'alloy') -> model voice"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="family options, checked by the family")

    @model_validator(mode="after")
    def _check_family(self) -> "ModelConfig":
        from speechengine.models.registry import family_class

        cls = family_class(self.family)  # raises ValueError naming the known families
        try:
            cls.Options.model_validate(self.options)
        except ValidationError as e:
            problems = "; ".join(f"options.{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise ValueError(f"family {self.family!r}: {problems}") from None
        if self.executor == "local" and self.replicas != 1:
            raise ValueError("'replicas' needs executor 'process' or 'ray'; the local executor scales with 'workers'")
        if self.executor != "ray" and (self.num_cpus is not None or self.num_gpus is not None):
            raise ValueError("'num_cpus' and 'num_gpus' are Ray resources; set executor: ray to use them")
        if self.voices and Capability.TTS not in cls.capabilities:
            raise ValueError(f"'voices' is only for TTS models; family {self.family!r} has no tts capability")
        return self

    def family_options(self) -> BaseModel:
        from speechengine.models.registry import family_class

        return family_class(self.family).Options.model_validate(self.options)


class RaySettings(_Strict):
    """How the server reaches Ray. No address: start a local Ray runtime inside the server."""

    address: str | None = Field(
        None, pattern=r"^(auto|ray://.+|[A-Za-z0-9.-]+:\d+)$", description="'auto', 'ray://host:port' or 'host:port'"
    )
    num_cpus: int | None = Field(None, ge=1, description="local runtime only: CPUs it may use (default: all)")
    num_gpus: int | None = Field(None, ge=0, description="local runtime only: GPUs it may use (default: detected)")
    object_store_memory_mb: int | None = Field(None, ge=75, description="local runtime only: object store size")
    namespace: str = "speechengine"
    place_timeout_s: float = Field(120, gt=0, description="give up on a replica Ray cannot place in this time")

    @model_validator(mode="after")
    def _local_only(self) -> "RaySettings":
        local_only = (self.num_cpus, self.num_gpus, self.object_store_memory_mb)
        if self.address is not None and any(v is not None for v in local_only):
            raise ValueError("num_cpus, num_gpus and object_store_memory_mb size a local runtime; "
                             "a cluster joined through 'address' brings its own resources")
        return self


class VoicesConfig(_Strict):
    """Custom voices (``/v1/audio/voices``) and cloning in ``/v1/audio/speech``."""

    conversion_model: str | None = Field(
        None, description="VC model that turns TTS output into a custom voice; default: the first vc model")
    vad_model: str | None = Field(
        None, description="VAD model that measures speech in samples; default: the first vad model, else energy")
    max_sample_mb: float = Field(10, gt=0, description="largest sample upload (OpenAI's limit is 10 MiB)")
    min_speech_s: float = Field(1.0, gt=0, description="least speech a sample must hold")
    max_sample_s: float = Field(120, gt=0, description="longest sample accepted")


class Settings(BaseSettings):
    """The whole server config. Every field can be overridden by SPEECHENGINE_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="SPEECHENGINE_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(12080, ge=0, le=65535)
    cache_dir: Path = Path("~/.cache/speechengine")
    data_dir: Path = Field(Path("~/.local/share/speechengine"), description="custom voices and other saved data")
    max_upload_mb: float = Field(200, gt=0)
    api_keys: Annotated[list[str], NoDecode] = []
    api_keys_file: Path | None = Field(None, description="file with one API key per line (# comments)")
    metrics_require_key: bool = Field(False, description="/metrics needs an API key too")
    log_level: Literal["trace", "debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    log_content: bool = Field(False, description="log request text and transcripts (debugging only)")
    max_loaded_models: int | None = Field(None, ge=1, description="evict least recently used idle models beyond this")
    threads: int = Field(0, ge=0, le=1024, description="intra-op threads that may compute at once in the server "
                         "process, over all its models (the thread budget); 0 = all cores the process may use")
    ray: RaySettings = RaySettings()
    voices: VoicesConfig = VoicesConfig()
    models: list[ModelConfig] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # environment beats the YAML file

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [k.strip() for k in v.split(",") if k.strip()]
        return v

    @field_validator("cache_dir", "data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    def all_api_keys(self) -> list[str]:
        """Keys from ``api_keys`` plus ``api_keys_file`` (read at start)."""
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.expanduser().read_text().splitlines()
            except OSError as e:
                raise ConfigError(f"api_keys_file: cannot read {self.api_keys_file}: {e}") from None
            keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        return keys

    @model_validator(mode="after")
    def _unique_names(self) -> "Settings":
        from speechengine.models.registry import family_class

        seen: dict[str, str] = {}
        for m in self.models:
            for name in (m.id, *m.aliases):
                if name in seen:
                    raise ValueError(f"model name {name!r} is used by both {seen[name]!r} and {m.id!r}")
                seen[name] = m.id
        for field, capability in (("conversion_model", Capability.VC), ("vad_model", Capability.VAD)):
            name = getattr(self.voices, field)
            if name is not None:
                model = next((m for m in self.models if name in (m.id, *m.aliases)), None)
                if model is None:
                    raise ValueError(f"voices.{field}: no model named {name!r} is configured")
                if capability not in family_class(model.family).capabilities:
                    raise ValueError(f"voices.{field}: model {name!r} has no {capability.value} capability")
        return self

    def replica_threads(self) -> int:
        """Intra-op threads the replica processes of this machine may keep busy: replicas x
        replica_threads over process models and Ray models of a local Ray runtime (a joined
        cluster places its actors on its own nodes)."""
        return sum(m.replicas * m.replica_threads for m in self.models
                   if m.executor == "process" or (m.executor == "ray" and self.ray.address is None))

    def first_model_with(self, capability: Capability) -> str | None:
        from speechengine.models.registry import family_class

        return next((m.id for m in self.models if capability in family_class(m.family).capabilities), None)

    def conversion_model(self) -> str | None:
        return self.voices.conversion_model or self.first_model_with(Capability.VC)

    def sample_vad_model(self) -> str | None:
        return self.voices.vad_model or self.first_model_with(Capability.VAD)


def load_settings(path: str | Path | None) -> Settings:
    """Read YAML (if given), apply env overrides, validate. Raises ConfigError naming the bad field."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
    try:
        return Settings(**data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid configuration{where}:\n" + "\n".join(lines)) from None
