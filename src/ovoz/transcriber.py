"""The user-facing model object: ``model = ovoz.load(...); model.transcribe("a.wav")``."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .gemma.kernels import fused
from . import pipeline
from .audio import AudioSource, decode_audio
from .gemma.generate import Generation, GenerationStats, generate
from .errors import ConfigError, OvozError
from .repetition import max_new_tokens_for
from .types import MAX_CLIP_SAMPLES, SAMPLE_RATE, Segment, TranscribeOptions, Transcript

logger = logging.getLogger(__name__)

ENGINES = ("auto", "static", "generate")


class Transcriber:
    """A loaded Gemma 4 audio model with its processor. Create it with :func:`ovoz.load`.

    ``engine``: ``"static"`` (static KV cache, CUDA graphs, continuous refill), ``"generate"`` (plain
    Hugging Face ``generate``) or ``"auto"`` (static on CUDA, generate on the CPU, where it is as fast).
    ``fused_kernels``: whether the static engine's runs use :mod:`ovoz.gemma.kernels.fused` (``None``: auto, see
    :func:`ovoz.gemma.kernels.fused.choose`, with the audio announced by :meth:`expect_audio`).
    """

    def __init__(self, model: Any, processor: Any, info: Any, engine: str = "auto",
                 fused_kernels: bool | None = None) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"engine={engine!r}: choose one of {', '.join(ENGINES)}.")
        self.model = model
        self.processor = processor
        self.info = info
        self.engine = engine
        self.fused_kernels = fused_kernels
        self.expected_audio_s = 0.0
        self._static: dict[int, Any] = {}
        self._vad: Any = None

    def __repr__(self) -> str:
        return f"Transcriber(base={self.info.base!r}, adapter={self.info.adapter!r}, device={self.info.device!r})"

    # ------------------------------------------------------------------ options
    def _options(self, options: TranscribeOptions | None, overrides: dict[str, Any]) -> TranscribeOptions:
        options = options or TranscribeOptions()
        unknown = set(overrides) - set(options.to_dict())
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}; see ovoz.TranscribeOptions.")
        return options.replace(**overrides) if overrides else options

    def _use_static(self) -> bool:
        if self.engine == "auto":
            return self.model.device.type == "cuda"
        return self.engine == "static"

    def expect_audio(self, seconds: float) -> None:
        """Say how much audio the coming calls hold in all (the runner and the evaluation do): with
        ``fused_kernels=None`` a job of hours compiles the engine's fused kernels even when each call is short."""
        self.expected_audio_s = float(seconds)

    def static_engine(self, slots: int, max_new_tokens: int) -> Any:
        """The static engine for this batch size, built once per size (its CUDA graphs are captured on first use)."""
        from .gemma.static_engine import StaticEngine

        engine = self._static.get(slots)
        if engine is None or engine.max_new_tokens < max_new_tokens:
            audio_tokens = getattr(self.processor, "audio_seq_length", 750)
            engine = StaticEngine(self.model, self.processor, slots=slots, max_new_tokens=max_new_tokens,
                                  max_audio_tokens=audio_tokens)
            self._static[slots] = engine
        return engine

    # ------------------------------------------------------------------ decoding
    def generate_clips(
        self, clips: list[np.ndarray], options: TranscribeOptions, *, max_new_tokens: list[int] | None = None,
        on_text: Callable[[str], None] | None = None, stats: GenerationStats | None = None,
    ) -> list[Generation]:
        """Greedy-decode clips of at most 30 s each, ``options.batch_size`` at a time."""
        caps = max_new_tokens or [options.max_new_tokens] * len(clips)
        if not clips:
            return []
        if self._use_static() and on_text is None:
            # Slots in powers of two (idle slots cost little): few engines, each with its KV cache and graphs.
            engine = self.static_engine(min(options.batch_size, 1 << (len(clips) - 1).bit_length()),
                                        options.max_new_tokens)
            audio_s = max(self.expected_audio_s, sum(len(clip) for clip in clips) / SAMPLE_RATE)
            return engine.run(clips, max_new_tokens=caps, system=options.system_prompt, user=options.user_prompt,
                              stats=stats, fused_kernels=fused.choose(self.fused_kernels, self.model.device, audio_s))
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

    def _vad_factory(self) -> Any:
        if self._vad is None:
            from .vad import SileroVAD

            self._vad = SileroVAD()
        return self._vad

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
                                  timings=pipeline.PipelineTimings(), stats=GenerationStats(), streaming=True)

    def _decode(self, audio: AudioSource, sample_rate: int | None) -> Any:
        source = (audio, sample_rate) if sample_rate is not None and isinstance(audio, np.ndarray) else audio
        return decode_audio(source)

    def _segments(self, samples: np.ndarray, options: TranscribeOptions, *, on_progress, on_text, timings, stats,
                  streaming: bool = False):
        started = time.perf_counter()
        chunks = pipeline.plan(samples, options, self._vad_factory)
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
                                 postprocess=lambda text: _postprocess(text, options), timings=timings)

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
        stats = GenerationStats()
        segments = tuple(self._segments(decoded.samples, options, on_progress=on_progress, on_text=on_text,
                                        timings=timings, stats=stats))
        text = " ".join(s.text for s in segments if s.text)
        finished = time.perf_counter()
        report = {
            "decode_audio_s": decoded_at - started,
            "vad_s": timings.vad_s,
            "features_s": stats.features_s,
            "generate_s": stats.generate_s,
            "total_s": finished - started,
        }
        if stats.n_decode_steps:
            report["prefill_s"] = stats.prefill_s
        return Transcript(
            text, segments, round(len(decoded.samples) / SAMPLE_RATE, 3), _name(audio), options,
            {key: round(value, 4) for key, value in report.items()}, self.info.to_dict(),
        )


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
                    results[index] = self.transcribe(decoded.samples, options=options, on_progress=on_progress)
                except OvozError as error:
                    results[index] = error
                    continue
                results[index] = _named(results[index], source, decode_s)
            else:
                short.append((index, decoded, pipeline.plan(decoded.samples, options, None), decode_s))
        clips, caps, owners = [], [], []
        for index, decoded, chunks, _ in short:
            for chunk in chunks:
                clips.append(decoded.samples[chunk.start : chunk.end])
                caps.append(max_new_tokens_for(chunk.duration_s, options.tokens_per_s_cap, options.max_new_tokens))
                owners.append(index)
        stats = GenerationStats()
        started = time.perf_counter()
        outputs = self.generate_clips(clips, options, max_new_tokens=caps, stats=stats) if clips else []
        share = (time.perf_counter() - started) / max(len(clips), 1)
        by_owner: dict[int, list] = {}
        for owner, output in zip(owners, outputs):
            by_owner.setdefault(owner, []).append(output)
        for index, decoded, chunks, decode_s in short:
            mine = iter(by_owner.get(index, []))
            segments = tuple(pipeline.segments(
                decoded.samples, chunks, lambda clips_, caps_: [next(mine) for _ in clips_], options,
                group_size=max(len(chunks), 1), on_progress=on_progress,
                postprocess=lambda text: _postprocess(text, options),
            ))
            timings = {"decode_audio_s": round(decode_s, 4), "generate_s": round(share * len(chunks), 4),
                       "batched_inputs": len(short)}
            results[index] = Transcript(
                " ".join(s.text for s in segments if s.text), segments, round(len(decoded.samples) / SAMPLE_RATE, 3),
                _name(sources[index]), options, timings, self.info.to_dict(),
            )
        return results  # type: ignore[return-value]


def _named(transcript: Transcript, source: Any, decode_s: float) -> Transcript:
    """A transcript made from decoded samples, given back its source name and decoding time."""
    timings = {**transcript.timings, "decode_audio_s": round(decode_s, 4)}
    return Transcript(transcript.text, transcript.segments, transcript.duration_s, _name(source), transcript.options,
                      timings, transcript.model)


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
            self._emit(_postprocess(self.pending[: cut + 1], self.options))
            self.pending = self.pending[cut + 1 :]

    def end_chunk(self) -> None:
        if self.pending:
            self._emit(_postprocess(self.pending, self.options))
            self.pending = ""

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self.separate:
            self.sink(" ")
            self.separate = False
        self.sink(text)
        self.emitted = True


def _postprocess(text: str, options: TranscribeOptions) -> str:
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
