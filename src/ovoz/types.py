"""Typed results and options shared by every part of ovoz (no heavy imports here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

SAMPLE_RATE = 16_000
"""Gemma 4's audio front end takes 16 kHz mono float32."""
MAX_CLIP_S = 30.0
"""One prompt holds at most 30 s of audio (the feature extractor truncates silently beyond that)."""
MAX_CLIP_SAMPLES = int(MAX_CLIP_S * SAMPLE_RATE)
AUDIO_TOKENS_PER_S = 25
"""The audio encoder emits one token per 40 ms."""

SYSTEM_PROMPT = "You are an assistant that transcribes speech accurately."
USER_PROMPT = "Please transcribe this audio."

OUTPUT_FORMATS = ("txt", "json", "srt", "vtt", "tsv")
SCRIPTS = ("latin", "cyrillic")


@dataclass(frozen=True)
class TranscribeOptions:
    """Decoding and long-audio options; validated once, at construction."""

    max_new_tokens: int = 256
    """Upper bound of generated tokens per chunk (the seed's default)."""
    batch_size: int = 8
    """Chunks decoded together."""
    chunk_target_s: float = 20.0
    """Long audio: preferred chunk length; chunks are cut in pauses near it."""
    chunk_overlap_s: float = 1.0
    """Long audio: overlap used only when speech runs past 30 s without a pause."""
    vad: bool = True
    """Split long audio by voice activity (Silero VAD); off = fixed 30 s windows."""
    tokens_per_s_cap: float | None = 12.0
    """Cap new tokens by chunk duration (tokens per second of audio, plus 16); None disables it."""
    repetition_guard: bool = True
    """Cut runaway repetition loops out of a chunk's text."""
    script: str = "latin"
    """Output script: 'latin' (as the model writes) or 'cyrillic' (transliterated)."""
    system_prompt: str = SYSTEM_PROMPT
    user_prompt: str = USER_PROMPT

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens={self.max_new_tokens!r}: give a positive integer (default 256).")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size!r}: give a positive integer (default 8).")
        if not 1.0 <= self.chunk_target_s <= MAX_CLIP_S:
            raise ConfigError(f"chunk_target_s={self.chunk_target_s!r}: give seconds between 1 and {MAX_CLIP_S:g}.")
        if not 0.0 <= self.chunk_overlap_s <= 5.0:
            raise ConfigError(f"chunk_overlap_s={self.chunk_overlap_s!r}: give seconds between 0 and 5.")
        if self.tokens_per_s_cap is not None and self.tokens_per_s_cap <= 0:
            raise ConfigError(f"tokens_per_s_cap={self.tokens_per_s_cap!r}: give a positive number or None.")
        if self.script not in SCRIPTS:
            raise ConfigError(f"script={self.script!r}: choose one of {', '.join(SCRIPTS)}.")

    def replace(self, **changes: Any) -> "TranscribeOptions":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Segment:
    """A timed piece of a transcript. Times are seconds from the start of the input."""

    id: int
    start_s: float
    end_s: float
    text: str
    avg_logprob: float | None = None
    """Mean log-probability of the generated tokens: a confidence to sort segments by doubt."""
    n_tokens: int = 0
    truncated: bool = False
    """True when the chunk hit the new-token cap or the repetition guard cut it."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Transcript:
    """The result of transcribing one input."""

    text: str
    segments: tuple[Segment, ...]
    duration_s: float
    source: str | None = None
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage: decode_audio, vad, generate, total."""
    model: dict[str, Any] = field(default_factory=dict)
    """What produced it: base, adapter, device, dtype."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "duration_s": self.duration_s,
            "source": self.source,
            "segments": [s.to_dict() for s in self.segments],
            "timings": dict(self.timings),
            "options": self.options.to_dict(),
            "model": dict(self.model),
        }
