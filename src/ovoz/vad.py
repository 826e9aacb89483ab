"""Long audio into chunks of at most 30 s: speech spans from VAD probabilities (pure) and the Silero wrapper.

Everything here counts whole samples at 16 kHz. The pure part (``speech_spans``, ``plan_chunks``,
``fixed_chunks``, ``merge_overlap``) needs no model and no torch; ``SileroVAD`` imports torch and
silero_vad when it is constructed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import AudioError, ConfigError, DependencyError
from .types import MAX_CLIP_S, MAX_CLIP_SAMPLES, SAMPLE_RATE, VADOptions
from .words import word_key

if TYPE_CHECKING:
    from .types import TranscribeOptions

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 512
"""Silero VAD scores one 32 ms frame of 512 samples at 16 kHz."""
_SPLIT_SEARCH_MIN_SAMPLES = 5 * SAMPLE_RATE
"""A forced split looks for its cut at least this far before the 30 s limit."""


@dataclass(frozen=True)
class Chunk:
    """A window of the input, in samples: ``audio[start:end]``.

    ``overlap_before`` counts the samples at the start shared with the previous chunk (non-zero only
    after a forced split inside continuous speech); their words appear in both texts (see ``merge_overlap``).
    """

    start: int
    end: int
    overlap_before: int = 0

    def __post_init__(self) -> None:
        assert 0 <= self.start < self.end, (self.start, self.end)
        assert 0 <= self.overlap_before < self.end - self.start, self

    @property
    def n_samples(self) -> int:
        return self.end - self.start

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self.n_samples / SAMPLE_RATE


def _samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


# ---------------------------------------------------------------------------------------------- pure


def speech_spans(probs: Sequence[float] | np.ndarray, n_samples: int,
                 options: VADOptions | None = None) -> list[tuple[int, int]]:
    """Speech spans ``(start, end)`` in samples from per-frame speech probabilities.

    probs: one probability per 512-sample frame (frame i covers samples [512 i, 512 i + 512)).
    n_samples: length of the audio in samples; spans never reach past it.
    options: thresholds and minimum durations (``VADOptions()`` when None).
    """
    opts = options or VADOptions()
    p = np.asarray(probs, dtype=np.float32).ravel()
    if p.size == 0 or n_samples <= 0:
        return []
    # Hysteresis, vectorised: 1 = enter speech, 0 = leave, -1 = keep the previous state.
    event = np.full(p.size + 1, -1, dtype=np.int8)
    event[0] = 0
    event[1:][p >= opts.threshold] = 1
    event[1:][p < opts.exit_threshold] = 0
    last = np.where(event >= 0, np.arange(event.size), 0)
    np.maximum.accumulate(last, out=last)
    state = event[last][1:]
    edges = np.diff(np.concatenate(([0], state, [0])).astype(np.int8))
    starts = np.flatnonzero(edges == 1) * FRAME_SAMPLES
    ends = np.minimum(np.flatnonzero(edges == -1) * FRAME_SAMPLES, n_samples)

    min_silence, min_speech = _samples(opts.min_silence_s), _samples(opts.min_speech_s)
    merged: list[list[int]] = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        if start >= end:
            continue
        if merged and start - merged[-1][1] < min_silence:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged if e - s >= min_speech]


def plan_chunks(spans: Sequence[tuple[int, int]], n_samples: int, *, target_s: float = 20.0,
                overlap_s: float = 1.0, probs: Sequence[float] | np.ndarray | None = None,
                options: VADOptions | None = None) -> list[Chunk]:
    """Group speech spans into chunks of at most 30 s, cut in pauses, aiming at ``target_s``.

    spans: speech ``(start, end)`` in samples, e.g. from ``speech_spans``.
    n_samples: length of the audio in samples; chunks stay inside it.
    target_s: preferred chunk length in seconds; neighbours merge while the chunk stays this short.
    overlap_s: seconds shared by the two chunks of a forced split (speech longer than 30 s, no pause).
    probs: per-frame probabilities; forced splits cut at the least speech-like frame. None = cut at 30 s.
    options: padding and merging (``VADOptions()`` when None).
    """
    opts = options or VADOptions()
    if not 1.0 <= target_s <= MAX_CLIP_S:
        raise ConfigError(f"target_s={target_s!r}: give seconds between 1 and {MAX_CLIP_S:g}.")
    if not 0.0 <= overlap_s <= 5.0:
        raise ConfigError(f"overlap_s={overlap_s!r}: give seconds between 0 and 5.")
    padded = _pad_spans(_clean_spans(spans, n_samples), n_samples, _samples(opts.speech_pad_s))
    smoothed = _smooth(probs) if probs is not None else None
    target, overlap = _samples(target_s), _samples(overlap_s)
    pieces: list[Chunk] = []
    for start, end in padded:
        pieces.extend(_split_long(start, end, target, overlap, smoothed))
    return _merge_pieces(pieces, target, _samples(opts.max_merge_gap_s), _samples(opts.min_chunk_s))


def chunks_from_probs(probs: Sequence[float] | np.ndarray, n_samples: int, *, target_s: float = 20.0,
                      overlap_s: float = 1.0, options: VADOptions | None = None) -> list[Chunk]:
    """``speech_spans`` then ``plan_chunks``: per-frame probabilities straight to chunks."""
    spans = speech_spans(probs, n_samples, options)
    return plan_chunks(spans, n_samples, target_s=target_s, overlap_s=overlap_s, probs=probs, options=options)


def fixed_chunks(n_samples: int, *, window_s: float = MAX_CLIP_S, overlap_s: float = 1.0) -> list[Chunk]:
    """Fallback without VAD: windows of ``window_s`` seconds, each sharing ``overlap_s`` with the previous."""
    window, overlap = _samples(window_s), _samples(overlap_s)
    if not 0 < window <= MAX_CLIP_SAMPLES or not 0 <= overlap < window:
        raise ConfigError(f"window_s={window_s!r}, overlap_s={overlap_s!r}: give 0 < window <= {MAX_CLIP_S:g} s "
                          "and 0 <= overlap < window.")
    chunks: list[Chunk] = []
    start = 0
    while start < n_samples:
        end = min(start + window, n_samples)
        chunks.append(Chunk(start, end, overlap if chunks else 0))
        if end == n_samples:
            break
        start = end - overlap
    return chunks


def _clean_spans(spans: Sequence[tuple[int, int]], n_samples: int) -> list[tuple[int, int]]:
    clean: list[list[int]] = []
    for start, end in sorted((max(0, int(s)), min(n_samples, int(e))) for s, e in spans):
        if start >= end:
            continue
        if clean and start <= clean[-1][1]:
            clean[-1][1] = max(clean[-1][1], end)
        else:
            clean.append([start, end])
    return [(s, e) for s, e in clean]


def _pad_spans(spans: list[tuple[int, int]], n_samples: int, pad: int) -> list[tuple[int, int]]:
    """Widen each span by ``pad``, but never past the middle of the pause to its neighbour."""
    padded = []
    for i, (start, end) in enumerate(spans):
        low = (spans[i - 1][1] + start) // 2 if i > 0 else 0
        high = (end + spans[i + 1][0]) // 2 if i + 1 < len(spans) else n_samples
        padded.append((max(start - pad, low), min(end + pad, high)))
    return padded


def _smooth(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Three-frame moving average, so that one odd frame inside a word does not attract a cut."""
    p = np.asarray(probs, dtype=np.float32).ravel()
    if p.size < 3:
        return p
    padded = np.concatenate((p[:1], p, p[-1:]))
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0


def _split_long(start: int, end: int, target: int, overlap: int, smoothed: np.ndarray | None) -> list[Chunk]:
    """Split a span longer than 30 s at its least speech-like frames, each cut overlapping by ``overlap``."""
    pieces: list[Chunk] = []
    overlap_before = 0
    while end - start > MAX_CLIP_SAMPLES:
        high = start + MAX_CLIP_SAMPLES
        low = max(start + min(target, MAX_CLIP_SAMPLES - _SPLIT_SEARCH_MIN_SAMPLES), start + overlap + 1)
        cut = _quietest_point(smoothed, low, high)
        pieces.append(Chunk(start, cut, overlap_before))
        logger.debug("forced split at sample %d (no pause within %d samples)", cut, MAX_CLIP_SAMPLES)
        start, overlap_before = cut - overlap, overlap
    pieces.append(Chunk(start, end, overlap_before))
    return pieces


def _quietest_point(smoothed: np.ndarray | None, low: int, high: int) -> int:
    """The centre of the lowest-probability frame whose centre lies in [low, high]; latest wins ties."""
    if smoothed is None:
        return high
    half = FRAME_SAMPLES // 2
    first = max(0, math.ceil((low - half) / FRAME_SAMPLES))
    last = min(smoothed.size - 1, (high - half) // FRAME_SAMPLES)
    if last < first:
        return high
    window = smoothed[first:last + 1]
    best = last - int(np.argmin(window[::-1]))
    return best * FRAME_SAMPLES + half


def _merge_pieces(pieces: list[Chunk], target: int, max_gap: int, min_chunk: int) -> list[Chunk]:
    """Greedily merge neighbours separated by a pause while the chunk stays within the target.

    A chunk shorter than ``min_chunk`` (or a short neighbour) may grow up to the 30 s limit instead.
    Pieces of a forced split overlap their predecessor and are never merged into it.
    """
    chunks: list[Chunk] = []
    for piece in pieces:
        if chunks and piece.overlap_before == 0:
            current = chunks[-1]
            merged = piece.end - current.start
            short = min(current.n_samples, piece.n_samples) < min_chunk
            if piece.start - current.end <= max_gap and (merged <= target or (short and merged <= MAX_CLIP_SAMPLES)):
                chunks[-1] = Chunk(current.start, piece.end, current.overlap_before)
                continue
        chunks.append(piece)
    return chunks


# ------------------------------------------------------------------------------ overlap de-duplication

def merge_overlap(prev_text: str, next_text: str, max_words: int = 8) -> tuple[str, str]:
    """Remove the words that two overlapping chunks both transcribed; return ``(prev_text, next_text)``.

    Finds the longest suffix of ``prev_text`` (at most ``max_words`` words) that equals a prefix of
    ``next_text``, comparing case-, apostrophe- and punctuation-insensitively, and drops it from the
    start of ``next_text``. With three or more words, one differing word at the edge is tolerated: a
    word cut in half by the chunk boundary; the longer spelling of that word is kept.

    prev_text: text of the earlier chunk.
    next_text: text of the later chunk, which starts inside the earlier one.
    max_words: longest overlap searched, in words (about 2.5 words per second of overlap).
    """
    prev_words, next_words = prev_text.split(), next_text.split()
    prev_keys = [word_key(w) for w in prev_words]
    next_keys = [word_key(w) for w in next_words]
    longest = min(max_words, len(prev_words), len(next_words))
    for k in range(longest, 0, -1):
        a, b = prev_keys[len(prev_keys) - k:], next_keys[:k]
        mismatches = [i for i in range(k) if a[i] != b[i]]
        if not mismatches:
            return prev_text, " ".join(next_words[k:])
        if k >= 3 and len(mismatches) == 1 and mismatches[0] in (0, k - 1):
            i = mismatches[0]
            edge_prev, edge_next = prev_words[len(prev_words) - k + i], next_words[i]
            if i == k - 1 and len(edge_next) > len(edge_prev):
                # The earlier chunk's last word was cut off; keep the later chunk's full word.
                return " ".join(prev_words[:-1]), " ".join(next_words[k - 1:])
            return prev_text, " ".join(next_words[k:])
    return prev_text, next_text


# --------------------------------------------------------------------------------------- Silero model


class SileroVAD:
    """Silero VAD (the model shipped inside the ``silero-vad`` package; nothing is downloaded).

    Frame probabilities are computed in parallel streams: the audio is cut into ``stream_s`` pieces,
    each primed with ``warmup_s`` of the audio before it, and all pieces run as one batch. This is
    10-20x faster than one sequential pass and agrees with it on all but a few frames near thresholds;
    ``stream_s=None`` gives the exact sequential pass. One instance must not be used from two threads.
    """

    def __init__(self, options: VADOptions | None = None, *, stream_s: float | None = 16.0,
                 warmup_s: float = 2.0, max_batch: int = 256) -> None:
        self.options = options or VADOptions()
        self.stream_frames = None if stream_s is None else max(1, _samples(stream_s) // FRAME_SAMPLES)
        self.warmup_frames = max(0, _samples(warmup_s) // FRAME_SAMPLES)
        self.max_batch = max_batch
        self._torch, self._model = _load_silero()

    def frame_probs(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of every 512-sample frame of 16 kHz mono float32 ``audio`` (last frame zero-padded)."""
        torch = self._torch
        audio = _check_audio(audio)
        n_frames = -(-audio.size // FRAME_SAMPLES)
        if n_frames == 0:
            return np.zeros(0, dtype=np.float32)
        x = torch.from_numpy(audio)
        step, warm = self.stream_frames, self.warmup_frames
        with torch.inference_mode():
            if step is None or n_frames <= step + warm:
                x = torch.nn.functional.pad(x, (0, n_frames * FRAME_SAMPLES - audio.size))
                return self._model.audio_forward(x[None], SAMPLE_RATE)[0].numpy()[:n_frames].astype(np.float32)
            n_streams = -(-n_frames // step)
            x = torch.nn.functional.pad(x, (warm * FRAME_SAMPLES, n_streams * step * FRAME_SAMPLES - audio.size))
            rows = x.unfold(0, (step + warm) * FRAME_SAMPLES, step * FRAME_SAMPLES)  # stream k primed by warm frames
            outs = [self._model.audio_forward(rows[i:i + self.max_batch].contiguous(), SAMPLE_RATE)[:, warm:]
                    for i in range(0, n_streams, self.max_batch)]
        return torch.cat(outs).reshape(-1)[:n_frames].numpy().astype(np.float32)

    def speech_spans(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """Speech ``(start, end)`` in samples of 16 kHz mono float32 ``audio``."""
        audio = _check_audio(audio)
        return speech_spans(self.frame_probs(audio), audio.size, self.options)

    def speech_chunks(self, audio: np.ndarray, options: TranscribeOptions | None = None) -> list[Chunk]:
        """Chunks of at most 30 s covering the speech of 16 kHz mono float32 ``audio``.

        options: ``chunk_target_s`` and ``chunk_overlap_s`` are read from it (the defaults when None).
        """
        audio = _check_audio(audio)
        probs = self.frame_probs(audio)
        target_s = options.chunk_target_s if options is not None else 20.0
        overlap_s = options.chunk_overlap_s if options is not None else 1.0
        chunks = chunks_from_probs(probs, audio.size, target_s=target_s, overlap_s=overlap_s, options=self.options)
        logger.debug("VAD: %d samples -> %d chunks", audio.size, len(chunks))
        return chunks


def _check_audio(audio: np.ndarray) -> np.ndarray:
    array = np.asarray(audio)
    if array.ndim != 1:
        raise AudioError(array, "VAD takes mono audio as a 1-D array; decode with ovoz.audio (16 kHz mono float32).")
    return np.ascontiguousarray(array, dtype=np.float32)


def _load_silero():  # -> (torch module, model)
    try:
        import torch
    except ImportError as exc:
        raise DependencyError("Silero VAD needs PyTorch: pip install torch (or pass vad=False).") from exc
    n_threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError as exc:
        raise DependencyError("Silero VAD is not installed: pip install silero-vad (or pass vad=False).") from exc
    finally:
        torch.set_num_threads(n_threads)  # importing silero_vad sets torch to one thread for the whole process
    model = load_silero_vad()
    logger.debug("loaded Silero VAD from the silero_vad package")
    return torch, model
