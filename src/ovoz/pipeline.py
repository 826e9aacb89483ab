"""Long audio: chunks of at most 30 s (VAD or fixed windows) -> batched decoding -> timed segments.

Pure orchestration: no Gemma knowledge here. Decoding is a callable taking clips and caps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .repetition import cut_repetition, max_new_tokens_for
from .types import MAX_CLIP_SAMPLES, SAMPLE_RATE, Segment, TranscribeOptions
from .vad import Chunk, fixed_chunks, merge_overlap

logger = logging.getLogger(__name__)

Decoder = Callable[[list[np.ndarray], list[int]], list]
"""(clips, max_new_tokens per clip) -> generations with .text, .token_ids, .avg_logprob, .stopped."""


@dataclass
class PipelineTimings:
    vad_s: float = 0.0
    generate_s: float = 0.0


SILENCE_PEAK = 10 ** (-80 / 20)
"""Audio whose loudest sample stays below -80 dBFS is digital silence: nothing is sent to the model."""


def plan(samples: np.ndarray, options: TranscribeOptions, vad_factory: Callable[[], object] | None) -> list[Chunk]:
    """Chunks for ``samples``: none for digital silence, one chunk when it fits a prompt, else VAD chunks
    (or fixed 30 s windows when ``options.vad`` is off or no VAD is given)."""
    n = len(samples)
    if n == 0 or max(float(samples.max()), -float(samples.min())) < SILENCE_PEAK:  # no |x| copy of an hour
        # A model asked to transcribe silence invents text; an empty transcript is the right answer.
        logger.info("the audio is digital silence (peak below -80 dBFS); nothing to transcribe")
        return []
    if n <= MAX_CLIP_SAMPLES:
        return [Chunk(0, n)]
    if options.vad and vad_factory is not None:
        return vad_factory().speech_chunks(samples, options)
    return fixed_chunks(n, overlap_s=options.chunk_overlap_s)


def segments(
    samples: np.ndarray,
    chunks: Sequence[Chunk],
    decode: Decoder,
    options: TranscribeOptions,
    *,
    group_size: int,
    on_progress: Callable[[float], None] | None = None,
    postprocess: Callable[[str], str] = lambda text: text,
    timings: PipelineTimings | None = None,
) -> Iterator[Segment]:
    """Decode ``chunks`` in groups of ``group_size`` (each group batched and length-sorted by the decoder)
    and yield segments in time order as each group finishes.

    Segment times come from the chunk offsets (whole samples), so they are monotonic, inside the audio and
    non-overlapping: the part of a chunk shared with its predecessor is attributed to the predecessor and
    its repeated words are removed from the text.
    """
    previous: Segment | None = None
    next_id = 0
    reported = 0  # samples counted as done on the progress bar (silence between chunks included)

    def finished(segment: Segment) -> Segment:
        return Segment(segment.id, segment.start_s, segment.end_s, postprocess(segment.text), segment.avg_logprob,
                       segment.n_tokens, segment.truncated)

    for group_start in range(0, len(chunks), group_size):
        group = chunks[group_start : group_start + group_size]
        clips = [samples[c.start : c.end] for c in group]
        caps = [max_new_tokens_for(c.duration_s, options.tokens_per_s_cap, options.max_new_tokens) for c in group]
        started = time.perf_counter()
        outputs = decode(clips, caps)
        if timings is not None:
            timings.generate_s += time.perf_counter() - started
        for chunk, output in zip(group, outputs):
            text, cut = output.text, False
            if options.repetition_guard:
                text, cut = cut_repetition(text)
                if cut:
                    logger.info("cut a repetition loop in the chunk at %.1f s", chunk.start_s)
            if chunk.overlap_before and previous is not None:
                previous_text, text = merge_overlap(previous.text, text)
                if previous_text != previous.text:
                    previous = Segment(previous.id, previous.start_s, previous.end_s, previous_text,
                                       previous.avg_logprob, previous.n_tokens, previous.truncated)
            if previous is not None:
                yield finished(previous)
            previous = Segment(
                id=next_id,
                start_s=round((chunk.start + chunk.overlap_before) / SAMPLE_RATE, 3),
                end_s=round(chunk.end / SAMPLE_RATE, 3),
                text=text,
                avg_logprob=output.avg_logprob,
                n_tokens=len(output.token_ids),
                truncated=cut or not output.stopped,
            )
            next_id += 1
        if on_progress is not None:
            done = len(samples) if group_start + group_size >= len(chunks) else group[-1].end
            on_progress((done - reported) / SAMPLE_RATE)
            reported = done
    if previous is not None:
        yield finished(previous)
    if on_progress is not None and reported < len(samples):
        on_progress((len(samples) - reported) / SAMPLE_RATE)
