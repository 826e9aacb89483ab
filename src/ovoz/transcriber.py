"""The user-facing model object: ``model = ovoz.load(...); model.transcribe("a.wav")``.

A :class:`Transcriber` is the long-audio pipeline (VAD chunks of at most 30 s, batched decoding, timed segments,
repetition guard, output script) over a :class:`ovoz.decoding.Decoder`, which alone knows the model.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import pipeline
from .audio import AudioSource, decode_audio
from .decoding import Decoded, Decoder, DecodeStats, JobSource, Prompt
from .errors import ConfigError, DecodingError, OvozError
from .repetition import max_new_tokens_for
from .types import MAX_CLIP_SAMPLES, SAMPLE_RATE, Segment, TranscribeOptions, Transcript, TranscriptionInfo

logger = logging.getLogger(__name__)


class Transcriber:
    """Transcribes inputs of any length with a loaded :class:`ovoz.decoding.Decoder`. Create it with
    :func:`ovoz.load`."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.expected_audio_s = 0.0
        self._vad: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"Transcriber(base={self.info.base!r}, adapter={self.info.adapter!r}, device={self.info.device!r})"

    @property
    def info(self) -> Any:
        """What was loaded (``ovoz.gemma.ModelInfo``): base, adapter, device, dtype, quantization, timings."""
        return self.decoder.info

    @property
    def model(self) -> Any:
        """The backend's model object (a transformers ``Gemma4ForConditionalGeneration`` for the Gemma backend)."""
        return getattr(self.decoder, "model", None)

    @property
    def processor(self) -> Any:
        return getattr(self.decoder, "processor", None)

    # ------------------------------------------------------------------ options
    def _options(self, options: TranscribeOptions | None, overrides: dict[str, Any]) -> TranscribeOptions:
        options = options or TranscribeOptions()
        unknown = set(overrides) - set(options.to_dict())
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}; see ovoz.TranscribeOptions.")
        return self.resolve_options(options.replace(**overrides) if overrides else options)

    def resolve_options(self, options: TranscribeOptions | None = None) -> TranscribeOptions:
        """``options`` with the automatic choices made for this model: ``batch_size=None`` becomes the decoder's
        default (8 on the CPU, what free GPU memory allows on CUDA)."""
        options = options or TranscribeOptions()
        if options.batch_size is None:
            chooser = getattr(getattr(self, "decoder", None), "default_batch_size", None)
            options = options.replace(batch_size=chooser(options.max_new_tokens) if chooser else 8)
        return options

    def expect_audio(self, seconds: float) -> None:
        """Say how much audio the coming calls hold in all (the runner and the evaluation do): a job of hours may
        compile the decoder's fused kernels even when each call is short."""
        self.expected_audio_s = float(seconds)

    # ------------------------------------------------------------------ decoding
    def generate_clips(self, clips: list[np.ndarray], options: TranscribeOptions, *,
                       max_new_tokens: list[int] | None = None, on_text: Callable[[str], None] | None = None,
                       stats: DecodeStats | None = None) -> list[Decoded]:
        """Greedy-decode clips of at most 30 s each, ``options.batch_size`` at a time (``on_text``: one clip, streamed)."""
        options = self.resolve_options(options)
        caps = max_new_tokens or [options.max_new_tokens] * len(clips)
        prompt = Prompt(options.system_prompt, options.user_prompt)
        if on_text is not None:
            return [self.decoder.stream(clip, cap, prompt=prompt, on_text=on_text, stats=stats)
                    for clip, cap in zip(clips, caps)]
        return self.decoder.decode(clips, caps, prompt=prompt, batch_size=options.batch_size,
                                   expected_audio_s=self.expected_audio_s, stats=stats)

    def serve_jobs(self, source: JobSource, options: TranscribeOptions) -> None:
        """Decode clip jobs of concurrent requests from ``source`` until it is closed (the HTTP server's loop)."""
        options = self.resolve_options(options)
        self.decoder.serve_jobs(source, prompt=Prompt(options.system_prompt, options.user_prompt),
                                batch_size=options.batch_size, max_new_tokens=options.max_new_tokens)

    @contextlib.contextmanager
    def with_adapter(self, adapter: str | Path, *, merge: bool = False,
                     local_files_only: bool = False) -> Iterator["Transcriber"]:
        """This model with a LoRA adapter for the block, then without it (see the decoder's ``with_adapter``)."""
        with self.decoder.with_adapter(adapter, merge=merge, local_files_only=local_files_only) as decoder:
            yield Transcriber(decoder)

    def vad(self, options: TranscribeOptions) -> Any:
        """The Silero VAD for these options (one per set of VAD options, built on first use)."""
        vad = self._vad.get(options.vad_options)
        if vad is None:
            from .vad import SileroVAD

            vad = self._vad[options.vad_options] = SileroVAD(options.vad_options)
        return vad

    # ------------------------------------------------------------------ public API
    def transcribe_segments(
        self,
        audio: AudioSource,
        *,
        sample_rate: int | None = None,
        options: TranscribeOptions | None = None,
        on_progress: Callable[[float], None] | None = None,
        **overrides: Any,
    ) -> Iterator[Segment]:
        """Yield timed segments of ``audio`` (any length) in order, as soon as they are decoded."""
        options = self._options(options, overrides)
        samples = self._decode(audio, sample_rate).samples
        yield from self._segments(samples, options, on_progress=on_progress, on_text=None,
                                  timings=pipeline.PipelineTimings(), stats=DecodeStats(), streaming=True)

    def _decode(self, audio: AudioSource, sample_rate: int | None) -> Any:
        source = (audio, sample_rate) if sample_rate is not None and isinstance(audio, np.ndarray) else audio
        return decode_audio(source)

    def _segments(self, samples: np.ndarray, options: TranscribeOptions, *, on_progress, on_text, timings, stats,
                  streaming: bool = False):
        started = time.perf_counter()
        chunks = pipeline.plan(samples, options, lambda: self.vad(options))
        timings.vad_s += time.perf_counter() - started
        if on_text is not None:
            # Text as it is generated: one chunk at a time, in the output script, a space between chunks.
            stream = _TextStream(on_text, options)

            def decode(clips, caps):
                outputs = []
                for clip, cap in zip(clips, caps):
                    stream.begin_chunk()
                    outputs += self.generate_clips([clip], options, max_new_tokens=[cap], on_text=stream,
                                                   stats=stats)
                    stream.end_chunk()
                return outputs
            group = 1
        else:
            def decode(clips, caps):
                return self.generate_clips(clips, options, max_new_tokens=caps, stats=stats)
            if streaming:  # yield segments batch by batch
                group = options.batch_size
            elif on_progress is not None:  # report progress a few batches at a time
                group = options.batch_size * 4
            else:  # one call: the engine sorts and refills across the whole input
                group = max(len(chunks), 1)
        return pipeline.segments(samples, chunks, decode, options, group_size=group, on_progress=on_progress,
                                 postprocess=lambda text: postprocess_text(text, options), timings=timings)

    def _transcript(self, text_segments: tuple[Segment, ...], n_samples: int, source: Any, options: TranscribeOptions,
                    timings: dict[str, float]) -> Transcript:
        info = TranscriptionInfo(round(n_samples / SAMPLE_RATE, 3), options, self.info.to_dict(),
                                 {key: round(value, 4) for key, value in timings.items()})
        return Transcript(" ".join(s.text for s in text_segments if s.text), text_segments, info, _name(source))

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
        """Transcribe one input of any length (path, bytes, or float array; ``sample_rate`` for arrays not at 16 kHz).

        Audio over 30 s is split at pauses (Silero VAD) into chunks of at most 30 s that are decoded in batches.
        ``on_text`` receives the text as it is generated; ``on_progress`` the seconds of audio finished.
        Keyword overrides set fields of :class:`ovoz.TranscribeOptions` (e.g. ``max_new_tokens=128``).
        """
        options = self._options(options, overrides)
        started = time.perf_counter()
        decoded = self._decode(audio, sample_rate)
        decoded_at = time.perf_counter()
        timings = pipeline.PipelineTimings()
        stats = DecodeStats()
        segments = tuple(self._segments(decoded.samples, options, on_progress=on_progress, on_text=on_text,
                                        timings=timings, stats=stats))
        report = {
            "decode_audio_s": decoded_at - started,
            "vad_s": timings.vad_s,
            "features_s": stats.features_s,
            "generate_s": stats.generate_s,
            "total_s": time.perf_counter() - started,
        }
        if stats.n_decode_steps:
            report["prefill_s"] = stats.prefill_s
        return self._transcript(segments, len(decoded.samples), audio, options, report)

    def transcribe_batch(
        self,
        sources: Sequence[AudioSource],
        *,
        options: TranscribeOptions | None = None,
        on_progress: Callable[[float], None] | None = None,
        **overrides: Any,
    ) -> list[Transcript | OvozError]:
        """Transcribe many inputs together: every input that fits one prompt (30 s) is decoded in shared batches
        (the engine sorts them by length and refills finished rows), longer ones through the long-audio pipeline.

        Returns one entry per source, in order: its :class:`Transcript`, or the :class:`OvozError` it raised
        (the others are unaffected). Results equal those of :meth:`transcribe` on each source.
        """
        options = self._options(options, overrides)
        results: list[Transcript | OvozError | None] = [None] * len(sources)
        short: list[tuple[int, Any, list, float]] = []  # (index, decoded, chunks, decode seconds)
        for index, source in enumerate(sources):
            started = time.perf_counter()
            try:
                decoded = self._decode(source, None)
            except OvozError as error:
                results[index] = error
                continue
            decode_s = time.perf_counter() - started
            if len(decoded.samples) > MAX_CLIP_SAMPLES:
                try:
                    long = self.transcribe(decoded.samples, options=options, on_progress=on_progress)
                except OvozError as error:
                    results[index] = error
                    continue
                timings = {**long.timings, "decode_audio_s": round(decode_s, 4)}
                results[index] = self._transcript(long.segments, len(decoded.samples), source, options, timings)
            else:
                short.append((index, decoded, pipeline.plan(decoded.samples, options, None), decode_s))
        clips, caps, owners = [], [], []
        for index, decoded, chunks, _ in short:
            for chunk in chunks:
                clips.append(decoded.samples[chunk.start : chunk.end])
                caps.append(max_new_tokens_for(chunk.duration_s, options.tokens_per_s_cap, options.max_new_tokens))
                owners.append(index)
        stats = DecodeStats()
        started = time.perf_counter()
        by_owner: dict[int, list] = {}
        try:
            outputs = self.generate_clips(clips, options, max_new_tokens=caps, stats=stats) if clips else []
        except Exception as error:  # noqa: BLE001 - one input may have failed the shared batch: redo them alone
            logger.warning("a shared batch of %d inputs failed (%s: %s); decoding them one by one", len(short),
                           type(error).__name__, error)
            outputs = None
            for index, _, _, _ in short:
                mine = [i for i, owner in enumerate(owners) if owner == index]
                try:
                    by_owner[index] = self.generate_clips([clips[i] for i in mine], options,
                                                          max_new_tokens=[caps[i] for i in mine], stats=stats)
                except Exception as alone:  # noqa: BLE001 - reported as this input's typed error
                    results[index] = DecodingError(_name(sources[index]) or f"<input {index}>",
                                                   f"decoding failed ({type(alone).__name__}: {alone})")
        share = (time.perf_counter() - started) / max(len(clips), 1)
        if outputs is not None:
            for owner, output in zip(owners, outputs):
                by_owner.setdefault(owner, []).append(output)
        for index, decoded, chunks, decode_s in short:
            if results[index] is not None:
                continue
            mine = iter(by_owner.get(index, []))
            segments = tuple(pipeline.segments(
                decoded.samples, chunks, lambda clips_, caps_: [next(mine) for _ in clips_], options,
                group_size=max(len(chunks), 1), on_progress=on_progress,
                postprocess=lambda text: postprocess_text(text, options),
            ))
            timings = {"decode_audio_s": decode_s, "generate_s": share * len(chunks), "batched_inputs": len(short)}
            results[index] = self._transcript(segments, len(decoded.samples), sources[index], options, timings)
        return results  # type: ignore[return-value]


class _TextStream:
    """Streamed text in the output script: Cyrillic is transliterated a whole word at a time (``sh``, ``yo`` ...
    must not be split), and chunks are separated by a space."""

    def __init__(self, sink: Callable[[str], None], options: TranscribeOptions) -> None:
        self.sink = sink
        self.options = options
        self.pending = ""
        self.emitted = False
        self.separate = False

    def begin_chunk(self) -> None:
        self.separate = self.emitted

    def __call__(self, text: str) -> None:
        if self.options.script == "latin":
            self._emit(text)
            return
        self.pending += text
        cut = self.pending.rfind(" ")
        if cut >= 0:
            self._emit(postprocess_text(self.pending[: cut + 1], self.options))
            self.pending = self.pending[cut + 1 :]

    def end_chunk(self) -> None:
        if self.pending:
            self._emit(postprocess_text(self.pending, self.options))
            self.pending = ""

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self.separate:
            self.sink(" ")
            self.separate = False
        self.sink(text)
        self.emitted = True


def postprocess_text(text: str, options: TranscribeOptions) -> str:
    """A chunk's text as the user asked for it (``options.script``)."""
    if options.script == "cyrillic":
        from .text import to_cyrillic

        return to_cyrillic(text)
    return text


def _name(audio: Any) -> str | None:
    if isinstance(audio, bytes):
        return f"<{len(audio)} bytes>"
    if isinstance(audio, str) or hasattr(audio, "__fspath__"):
        return str(audio)
    return None
