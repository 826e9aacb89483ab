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
MAX_AUDIO_TOKENS = int(MAX_CLIP_S * AUDIO_TOKENS_PER_S)
"""Audio placeholders of one 30 s clip (750): the processor's ``audio_seq_length``."""
LANGUAGE = "uz"
"""The one language ovoz transcribes (ISO 639-1)."""

DEFAULT_BASE = "unsloth/gemma-4-E4B-it"
"""The seed's base model (bf16) on the Hugging Face hub."""
DEFAULT_BASE_4BIT = "unsloth/gemma-4-e4b-it-unsloth-bnb-4bit"
"""The same base pre-quantized to 4 bits (what the seed was trained from)."""
DEFAULT_ADAPTER = "zehnmindai/gemma_4_uzbek_stt_lora"
"""The seed: the published Uzbek LoRA adapter."""

SYSTEM_PROMPT = "You are an assistant that transcribes speech accurately."
USER_PROMPT = "Please transcribe this audio."

OUTPUT_FORMATS = ("txt", "json", "srt", "vtt", "tsv")
SCRIPTS = ("latin", "cyrillic")
ENGINES = ("auto", "static", "generate", "vllm")
"""Decoding engines: ovoz's own on transformers (``auto``: ``static`` on CUDA, ``generate`` on the CPU) and vLLM."""


@dataclass(frozen=True)
class VADOptions:
    """How frame probabilities become speech spans and spans become chunks."""

    threshold: float = 0.5
    """A frame at or above this probability starts speech."""
    neg_threshold: float | None = None
    """Speech ends below this probability; None = threshold - 0.15 (Silero's hysteresis)."""
    min_speech_s: float = 0.25
    """Speech spans shorter than this (seconds) are dropped as blips."""
    min_silence_s: float = 0.1
    """Pauses shorter than this (seconds) do not end a speech span."""
    speech_pad_s: float = 0.2
    """Seconds of context added on each side of speech, never past the middle of a pause."""
    max_merge_gap_s: float = 3.0
    """Neighbouring speech is merged into one chunk only across pauses up to this long (seconds)."""
    min_chunk_s: float = 2.0
    """A chunk shorter than this may grow past the target (up to 30 s) to absorb its neighbour."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold={self.threshold!r}: give a probability between 0 and 1 (default 0.5).")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise ConfigError(f"neg_threshold={self.neg_threshold!r}: give a probability <= threshold, or None.")
        for name in ("min_speech_s", "min_silence_s", "speech_pad_s", "max_merge_gap_s", "min_chunk_s"):
            value = getattr(self, name)
            if not 0.0 <= value <= MAX_CLIP_S:
                raise ConfigError(f"{name}={value!r}: give seconds between 0 and {MAX_CLIP_S:g}.")

    @property
    def exit_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)



@dataclass(frozen=True)
class TranscribeOptions:
    """Decoding and long-audio options; validated once, at construction."""

    max_new_tokens: int = 256
    """Upper bound of generated tokens per chunk (the seed's default)."""
    batch_size: int | None = None
    """Chunks decoded together. None (auto): 8 on the CPU; on a GPU as many rows as its free memory holds
    (``ovoz.gemma.batch_size.auto_batch_size``, a power of two up to 512), decided once per loaded model."""
    chunk_target_s: float = 20.0
    """Long audio: preferred chunk length; chunks are cut in pauses near it."""
    chunk_overlap_s: float = 1.0
    """Long audio: overlap used only when speech runs past 30 s without a pause."""
    vad: bool = True
    """Split long audio by voice activity (Silero VAD); off = fixed 30 s windows."""
    vad_options: VADOptions = field(default_factory=VADOptions)
    """How Silero VAD's frame probabilities become speech spans and chunks (thresholds, padding, merging)."""
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
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ConfigError(f"batch_size={self.batch_size!r}: give a positive integer, or None for auto.")
        if not 1.0 <= self.chunk_target_s <= MAX_CLIP_S:
            raise ConfigError(f"chunk_target_s={self.chunk_target_s!r}: give seconds between 1 and {MAX_CLIP_S:g}.")
        if not 0.0 <= self.chunk_overlap_s <= 5.0:
            raise ConfigError(f"chunk_overlap_s={self.chunk_overlap_s!r}: give seconds between 0 and 5.")
        if self.tokens_per_s_cap is not None and self.tokens_per_s_cap <= 0:
            raise ConfigError(f"tokens_per_s_cap={self.tokens_per_s_cap!r}: give a positive number or None.")
        if not isinstance(self.vad_options, VADOptions):
            raise ConfigError(f"vad_options={self.vad_options!r}: give an ovoz.VADOptions.")
        if self.script not in SCRIPTS:
            raise ConfigError(f"script={self.script!r}: choose one of {', '.join(SCRIPTS)}.")

    def replace(self, **changes: Any) -> "TranscribeOptions":
        if isinstance(changes.get("vad_options"), dict):
            changes["vad_options"] = VADOptions(**changes["vad_options"])
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
class TranscriptionInfo:
    """How a transcript was made: the options and VAD options used, the model, the timings (as faster-whisper's
    ``TranscriptionInfo`` echoes them)."""

    duration_s: float
    """Seconds of audio in the input."""
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    model: dict[str, Any] = field(default_factory=dict)
    """What produced it: base, adapter, device, dtype, quantization."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage: decode_audio, vad, features, generate, total."""
    language: str = LANGUAGE

    @property
    def vad_options(self) -> VADOptions:
        return self.options.vad_options

    def to_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "language": self.language, "options": self.options.to_dict(),
                "vad_options": dataclasses.asdict(self.vad_options), "model": dict(self.model),
                "timings": dict(self.timings)}


@dataclass(frozen=True)
class Transcript:
    """The result of transcribing one input."""

    text: str
    segments: tuple[Segment, ...]
    info: TranscriptionInfo
    source: str | None = None

    @property
    def duration_s(self) -> float:
        return self.info.duration_s

    @property
    def options(self) -> TranscribeOptions:
        return self.info.options

    @property
    def timings(self) -> dict[str, float]:
        return self.info.timings

    @property
    def model(self) -> dict[str, Any]:
        return self.info.model

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "duration_s": self.duration_s,
            "source": self.source,
            "segments": [s.to_dict() for s in self.segments],
            "timings": dict(self.timings),
            "options": self.options.to_dict(),
            "model": dict(self.model),
            "info": self.info.to_dict(),
        }
