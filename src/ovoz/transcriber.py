"""The user-facing model object: ``model = ovoz.load(...); model.transcribe("a.wav")``."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import numpy as np

from .audio import AudioSource, decode_audio
from .engine import GenerationStats, generate
from .errors import AudioTooLongError, ConfigError
from .types import MAX_CLIP_SAMPLES, SAMPLE_RATE, Segment, TranscribeOptions, Transcript

logger = logging.getLogger(__name__)


class Transcriber:
    """A loaded Gemma 4 audio model with its processor. Create it with :func:`ovoz.load`."""

    def __init__(self, model: Any, processor: Any, info: Any) -> None:
        self.model = model
        self.processor = processor
        self.info = info

    def __repr__(self) -> str:
        return f"Transcriber(base={self.info.base!r}, adapter={self.info.adapter!r}, device={self.info.device!r})"

    def _options(self, options: TranscribeOptions | None, overrides: dict[str, Any]) -> TranscribeOptions:
        options = options or TranscribeOptions()
        unknown = set(overrides) - set(options.to_dict())
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}; see ovoz.TranscribeOptions.")
        return options.replace(**overrides) if overrides else options

    def generate_clips(
        self, clips: list[np.ndarray], options: TranscribeOptions, *, max_new_tokens: list[int] | None = None,
        on_text: Callable[[str], None] | None = None, stats: GenerationStats | None = None,
    ) -> list:
        """Transcribe clips of at most 30 s each, ``options.batch_size`` at a time (longest first)."""
        caps = max_new_tokens or [options.max_new_tokens] * len(clips)
        order = sorted(range(len(clips)), key=lambda i: -len(clips[i]))  # similar lengths share a batch
        results: list = [None] * len(clips)
        for start in range(0, len(order), options.batch_size):
            batch = order[start : start + options.batch_size]
            outputs = generate(
                self.model, self.processor, [clips[i] for i in batch], max_new_tokens=[caps[i] for i in batch],
                system=options.system_prompt, user=options.user_prompt, on_text=on_text, stats=stats,
            )
            for index, output in zip(batch, outputs):
                results[index] = output
        return results

    def transcribe(
        self,
        audio: AudioSource,
        *,
        sample_rate: int | None = None,
        options: TranscribeOptions | None = None,
        on_text: Callable[[str], None] | None = None,
        on_progress: Callable[[float], None] | None = None,
        **overrides: Any,
    ) -> Transcript:
        """Transcribe one input (path, bytes, or float array; ``sample_rate`` for arrays not at 16 kHz).

        ``on_text`` receives the text as it is generated; ``on_progress`` the seconds of audio finished. Keyword overrides set fields of
        :class:`ovoz.TranscribeOptions` (e.g. ``max_new_tokens=128``).
        """
        options = self._options(options, overrides)
        started = time.perf_counter()
        source = (audio, sample_rate) if sample_rate is not None and isinstance(audio, np.ndarray) else audio
        decoded = decode_audio(source)
        decoded_at = time.perf_counter()
        samples = decoded.samples
        if len(samples) > MAX_CLIP_SAMPLES:
            raise AudioTooLongError(
                _name(audio),
                f"{decoded.duration_s:.1f} s is longer than the 30 s one prompt can hold; "
                "ovoz refuses rather than truncating silently. Split the audio into pieces of at most 30 s.",
            )
        stats = GenerationStats()
        (output,) = self.generate_clips([samples], options, on_text=on_text, stats=stats)
        duration_s = len(samples) / SAMPLE_RATE
        if on_progress is not None:
            on_progress(duration_s)
        text = _postprocess(output.text, options)
        segment = Segment(0, 0.0, round(duration_s, 3), text, output.avg_logprob, len(output.token_ids),
                          not output.stopped)
        finished = time.perf_counter()
        timings = {
            "decode_audio_s": round(decoded_at - started, 4),
            "features_s": round(stats.features_s, 4),
            "generate_s": round(stats.generate_s, 4),
            "total_s": round(finished - started, 4),
        }
        return Transcript(text, (segment,), round(duration_s, 3), _name(audio), options, timings, self.info.to_dict())


def _postprocess(text: str, options: TranscribeOptions) -> str:
    if options.script == "cyrillic":
        from .text import to_cyrillic

        return to_cyrillic(text)
    return text


def _name(audio: Any) -> str | None:
    if isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__"):
        return str(audio) if not isinstance(audio, bytes) else f"<{len(audio)} bytes>"
    return None
