"""Writers of a ``Transcript`` to txt, json, srt, vtt and tsv; each takes an open text file.

Times are rounded to whole milliseconds once, here, when formatting. Subtitle cues are kept readable:
a long segment is split at word boundaries into cues of at most ``max_lines`` lines of
``max_line_chars`` characters, its time shared out in proportion to characters; cues never overlap
and never go backwards, even when segments from overlapping chunks do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable, TextIO

from .errors import ConfigError
from .types import Transcript

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubtitleOptions:
    """Shape of subtitle cues (SRT and VTT)."""

    max_line_chars: int = 42
    """Characters per line (the usual broadcast limit); a longer single word gets a line of its own."""
    max_lines: int = 2
    """Lines per cue."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_line_chars, int) or self.max_line_chars < 1:
            raise ConfigError(f"max_line_chars={self.max_line_chars!r}: give a positive integer (default 42).")
        if not isinstance(self.max_lines, int) or self.max_lines < 1:
            raise ConfigError(f"max_lines={self.max_lines!r}: give a positive integer (default 2).")


@dataclass(frozen=True)
class Cue:
    """One subtitle: whole milliseconds and text lines."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


# ------------------------------------------------------------------------------------------ cues


def _wrap(words: list[str], width: int) -> list[str]:
    """Greedy line filling; a word longer than ``width`` stands on a line of its own."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _balanced_lines(words: list[str], options: SubtitleOptions) -> list[str] | None:
    """Lines of one cue, as even in length as fits (a two-line cue reads better than 40 + 2 characters)."""
    lines = _wrap(words, options.max_line_chars)
    if len(lines) > options.max_lines:
        return None
    if len(lines) == 2:
        best = min(range(1, len(words)), key=lambda i: max(len(" ".join(words[:i])), len(" ".join(words[i:]))))
        candidate = [" ".join(words[:best]), " ".join(words[best:])]
        if max(map(len, candidate)) <= max(map(len, lines)):
            return candidate
    return lines


def _split_words(words: list[str], options: SubtitleOptions) -> list[list[str]]:
    """Words of one segment grouped into cues that fit; groups as even as the greedy count allows."""
    greedy: list[list[str]] = []
    for word in words:
        if greedy and _balanced_lines(greedy[-1] + [word], options) is not None:
            greedy[-1].append(word)
        else:
            greedy.append([word])
    n_cues = len(greedy)
    if n_cues <= 1:
        return greedy
    # Redistribute by characters so that the last cue is not a lone word.
    total = sum(len(w) + 1 for w in words)
    even: list[list[str]] = [[]]
    done = 0
    for word in words:
        if even[-1] and done >= total * len(even) / n_cues and len(even) < n_cues:
            even.append([])
        even[-1].append(word)
        done += len(word) + 1
    if all(_balanced_lines(group, options) is not None for group in even):
        return even
    return greedy


def cues(transcript: Transcript, options: SubtitleOptions | None = None) -> list[Cue]:
    """Subtitle cues of ``transcript``: split to fit, rounded to ms once, monotonic and non-overlapping."""
    opts = options or SubtitleOptions()
    result: list[Cue] = []
    for segment in transcript.segments:
        words = segment.text.split()
        if not words:
            continue
        groups = _split_words(words, opts)
        total_chars = sum(len(" ".join(g)) for g in groups)
        start_s, span_s = segment.start_s, max(segment.end_s - segment.start_s, 0.0)
        done = 0
        for group in groups:
            text_chars = len(" ".join(group))
            cue_start_s = start_s + span_s * done / total_chars
            done += text_chars
            cue_end_s = start_s + span_s * done / total_chars
            lines = _balanced_lines(group, opts) or _wrap(group, opts.max_line_chars)
            _append(result, _ms(cue_start_s), _ms(cue_end_s), tuple(lines))
    return result


def _timed_segments(transcript: Transcript) -> list[Cue]:
    """One cue per non-empty segment, without splitting (for TSV), with the same ordering guarantees."""
    result: list[Cue] = []
    for segment in transcript.segments:
        text = " ".join(segment.text.split())
        if text:
            _append(result, _ms(segment.start_s), _ms(segment.end_s), (text,))
    return result


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))


def _append(result: list[Cue], start_ms: int, end_ms: int, lines: tuple[str, ...]) -> None:
    """Append a cue, starting no earlier than the previous one ends (segments of overlapping chunks)."""
    if result:
        start_ms = max(start_ms, result[-1].end_ms)
    end_ms = max(end_ms, start_ms + 1)
    result.append(Cue(start_ms, end_ms, lines))


def format_timestamp(ms: int, separator: str = ".") -> str:
    """``HH:MM:SS.mmm`` from whole milliseconds; ``separator=","`` gives the SRT form."""
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


# --------------------------------------------------------------------------------------- writers


def write_txt(transcript: Transcript, file: TextIO, options: SubtitleOptions | None = None) -> None:
    """Plain text, one segment per line (the whole text when there are no segments)."""
    lines = [" ".join(s.text.split()) for s in transcript.segments] if transcript.segments else [transcript.text]
    for line in lines:
        if line.strip():
            file.write(line.strip() + "\n")


def write_json(transcript: Transcript, file: TextIO, options: SubtitleOptions | None = None) -> None:
    """``transcript.to_dict()`` as UTF-8 JSON (Uzbek letters unescaped)."""
    json.dump(transcript.to_dict(), file, ensure_ascii=False, indent=2)
    file.write("\n")


def write_srt(transcript: Transcript, file: TextIO, options: SubtitleOptions | None = None) -> None:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    for index, cue in enumerate(cues(transcript, options), start=1):
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        file.write(f"{index}\n{format_timestamp(cue.start_ms, ',')} --> {format_timestamp(cue.end_ms, ',')}\n"
                   f"{text}\n\n")


def write_vtt(transcript: Transcript, file: TextIO, options: SubtitleOptions | None = None) -> None:
    """WebVTT: ``WEBVTT`` header, ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues, text HTML-escaped."""
    file.write("WEBVTT\n\n")
    for cue in cues(transcript, options):
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        file.write(f"{format_timestamp(cue.start_ms)} --> {format_timestamp(cue.end_ms)}\n{text}\n\n")


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_tsv(transcript: Transcript, file: TextIO, options: SubtitleOptions | None = None) -> None:
    """``start<TAB>end<TAB>text`` per segment, times in integer milliseconds (as Whisper writes it)."""
    file.write("start\tend\ttext\n")
    for cue in _timed_segments(transcript):
        text = cue.lines[0].replace("\t", " ")
        file.write(f"{cue.start_ms}\t{cue.end_ms}\t{text}\n")


Writer = Callable[..., None]

FORMATS: dict[str, Writer] = {"txt": write_txt, "json": write_json, "srt": write_srt, "vtt": write_vtt,
                              "tsv": write_tsv}


def write(transcript: Transcript, fmt: str, file: TextIO, options: SubtitleOptions | None = None) -> None:
    """Write ``transcript`` to the open text ``file`` in format ``fmt`` (one of ``FORMATS``)."""
    writer = FORMATS.get(fmt.lower() if isinstance(fmt, str) else fmt)
    if writer is None:
        raise ConfigError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    writer(transcript, file, options)
