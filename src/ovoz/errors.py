"""Typed errors. Every message names the input at fault and says how to fix it."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_CLI_NAMES = contextvars.ContextVar("ovoz_cli_names", default=False)


def named(option: str, value: object) -> str:
    """An option and its value as the caller wrote them: ``--base X`` under the ``ovoz`` command, ``base='X'``
    from Python (messages then tell a Python user which argument to change, a CLI user which flag)."""
    if _CLI_NAMES.get():
        return f"--{option.replace('_', '-')} {value}"
    return f"{option}={str(value)!r}"


@contextlib.contextmanager
def cli_names() -> Iterator[None]:
    """Within this block, :func:`named` speaks of command-line flags (the ``ovoz`` command enters it)."""
    token = _CLI_NAMES.set(True)
    try:
        yield
    finally:
        _CLI_NAMES.reset(token)


class OvozError(Exception):
    """Base class of every error ovoz raises on purpose."""


class ConfigError(OvozError, ValueError):
    """An option or configuration value is invalid."""


class OutputWriteError(OvozError):
    """An output file or folder could not be written (not a folder, read-only, disk full); names the path."""


class DependencyError(OvozError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class AudioError(OvozError):
    """Audio could not be read. ``source`` names the input."""

    def __init__(self, source: object, message: str) -> None:
        self.source = source
        super().__init__(f"{_describe(source)}: {message}")


class AudioDecodeError(AudioError):
    """The input is not decodable audio (corrupt, truncated or not an audio/video file)."""


class NoAudioStreamError(AudioError):
    """The container decoded but holds no audio stream (e.g. a silent video)."""


class EmptyAudioError(AudioError):
    """The input decoded to zero samples."""


class AudioTooLongError(AudioError):
    """The audio is longer than one prompt can hold and the caller asked not to split it."""


class DecodingError(OvozError):
    """The model failed on one input (the message names it); other inputs of the same call are unaffected."""

    def __init__(self, source: object, message: str) -> None:
        self.source = source
        super().__init__(f"{_describe(source)}: {message}")


class ModelLoadError(OvozError):
    """A base model or adapter could not be loaded."""


class ModelNotFoundError(ModelLoadError):
    """Weights are neither in a local folder nor reachable on the hub."""


class AdapterError(ModelLoadError):
    """A LoRA adapter is malformed or does not fit the base model."""


class ManifestError(OvozError):
    """A manifest (JSONL, TSV, dataset folder) is malformed."""


def _describe(source: object) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if hasattr(source, "shape"):
        return f"<array shape={tuple(source.shape)}>"
    return str(source)


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio path does not exist or is a directory."""


class ManifestRowError(ManifestError):
    """One row of a manifest is unusable (missing audio file, empty transcript, bad JSON, wrong type)."""

    def __init__(self, source: object, row: int, id: str | None, reason: str) -> None:
        self.source = source
        self.row = row
        self.id = id
        self.reason = reason
        super().__init__(
            f"{source}: row {row} (id={id}): {reason}. Fix the row, or pass on_error='skip' to skip bad rows "
            "and collect them in a ReadReport."
        )
