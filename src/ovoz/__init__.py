"""ovoz: Uzbek speech-to-text on Gemma 4 E4B with LoRA adapters.

    >>> import ovoz
    >>> model = ovoz.load()                      # unsloth/gemma-4-E4B-it + zehnmindai/gemma_4_uzbek_stt_lora
    >>> print(model.transcribe("lecture.wav").text)

Importing ovoz is light: torch and transformers load only when a model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AdapterError,
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudioTooLongError,
    ConfigError,
    DependencyError,
    EmptyAudioError,
    ModelLoadError,
    ModelNotFoundError,
    NoAudioStreamError,
    OvozError,
)
from .types import SAMPLE_RATE, Segment, TranscribeOptions, Transcript, TranscriptionInfo, VADOptions

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .transcriber import Transcriber

__all__ = [
    "load", "load_audio", "Transcriber", "TranscribeOptions", "TranscriptionInfo", "VADOptions", "Transcript",
    "Segment", "SAMPLE_RATE",
    "OvozError", "ConfigError", "DependencyError", "AudioError", "AudioDecodeError", "AudioFileNotFoundError",
    "AudioTooLongError", "EmptyAudioError", "NoAudioStreamError", "ModelLoadError", "ModelNotFoundError",
    "AdapterError", "__version__",
]


def load(*args: Any, **kwargs: Any) -> "Transcriber":
    """Load a model; see :func:`ovoz.api.load`."""
    from .api import load as _load

    return _load(*args, **kwargs)


def load_audio(*args: Any, **kwargs: Any) -> Any:
    """Decode audio to 16 kHz mono float32; see :func:`ovoz.audio.load_audio`."""
    from .audio import load_audio as _load_audio

    return _load_audio(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Transcriber":
        from .transcriber import Transcriber

        return Transcriber
    raise AttributeError(f"module 'ovoz' has no attribute {name!r}")
