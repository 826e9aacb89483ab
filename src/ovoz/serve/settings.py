"""Server settings: one frozen dataclass, filled from defaults, then ``OVOZ_*`` environment variables, then flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from ..types import ENGINES, SCRIPTS

MiB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    """How ``ovoz serve`` runs. Every field has an environment variable ``OVOZ_<FIELD>`` (see :data:`ENVIRONMENT`)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    """Accepted bearer keys; empty: no authentication."""
    max_upload_bytes: int = 25 * MiB
    """Uploads over this size get 413 (OpenAI's own limit is 25 MiB)."""
    max_requests: int = 512
    """Requests admitted at once (transcribing or waiting); beyond it 429 with Retry-After."""
    batch_size: int = 8
    """Engine slots: chunks of all requests decoded together."""
    max_new_tokens: int = 256
    """New tokens per chunk at most."""
    script: str = "latin"
    timeout_s: float = 60.0
    """Request timeout: this many seconds ..."""
    timeout_per_audio_s: float = 1.0
    """... plus this many seconds per second of audio (a 1-hour upload waits an hour more than a short one)."""
    model_name: str = "ovoz-uz"
    """The model id listed by /v1/models; requests may name any model (clients hard-code "whisper-1")."""
    warmup: bool = True
    """Decode one clip before the server says it is ready (CUDA graphs, kernels)."""
    # The model, when the app loads it (``create_app`` without a transcriber):
    base: str | None = None
    adapter: str | None = None
    no_adapter: bool = False
    device: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    local_files_only: bool = False
    fused_kernels: bool | None = None
    engine: str = "auto"
    """auto, static, generate (ovoz's engines) or vllm (``ovoz serve --engine vllm``; OVOZ_ENGINE)."""

    def __post_init__(self) -> None:
        for name in ("port", "max_upload_bytes", "max_requests", "batch_size", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "port" else 1):
                raise ConfigError(f"{name}={value!r}: give a positive integer (environment {env_name(name)}).")
        for name in ("timeout_s", "timeout_per_audio_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r}: give a positive number of seconds.")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine={self.engine!r}: choose one of {', '.join(ENGINES)} (environment OVOZ_ENGINE).")
        if self.script not in SCRIPTS:
            raise ConfigError(f"script={self.script!r}: choose one of {', '.join(SCRIPTS)}.")
        if any(not key for key in self.api_keys):
            raise ConfigError("api_keys: an empty key would let anyone in; remove it "
                              "(OVOZ_API_KEYS is comma-separated).")

    def replace(self, **changes: Any) -> "ServeSettings":
        return dataclasses.replace(self, **changes)

    def timeout_for(self, audio_s: float) -> float:
        """Seconds a request of ``audio_s`` seconds of audio may take, queueing included."""
        return self.timeout_s + self.timeout_per_audio_s * audio_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ServeSettings":
        """Defaults, then ``OVOZ_*`` variables of ``environ`` (``os.environ`` by default), then ``overrides``
        (flags; ``None`` values are skipped)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            raw = environ.get(env_name(item.name))
            if raw is not None and raw != "":
                values[item.name] = _parse(item, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def env_name(field_name: str) -> str:
    return "OVOZ_" + field_name.upper()


def _parse(item: dataclasses.Field, raw: str) -> Any:
    kind = str(item.type)
    name = env_name(item.name)
    try:
        if item.name == "api_keys":
            return tuple(key.strip() for key in raw.split(",") if key.strip())
        if item.name == "fused_kernels":
            return {"auto": None, "on": True, "off": False}[raw.lower()]
        if kind.startswith("bool"):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"{name}={raw!r}: not a valid {kind.split(' ')[0]} ({error}).") from error
    return raw


ENVIRONMENT: dict[str, str] = {env_name(f.name): f.name for f in dataclasses.fields(ServeSettings)}
"""Environment variable -> settings field."""

