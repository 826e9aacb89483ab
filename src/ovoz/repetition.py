"""Guards against runaway generation: repetition loops in a chunk's text and a token cap by duration.

An autoregressive decoder that loses track of the audio tends to repeat a word, a phrase or a few
characters until it hits the token limit ("rahmat rahmat rahmat ...", "hahahahaha..."). A run of more
than ``max_repeats`` consecutive copies is collapsed to its first copy; up to ``max_repeats`` copies
("ha ha", "juda juda juda") are left alone.
"""

from __future__ import annotations

import logging
import math
import re

from .errors import ConfigError
from .words import word_key

logger = logging.getLogger(__name__)

MAX_REPEATS = 3
"""Consecutive copies of a word or phrase that are still taken as real speech."""
MAX_NGRAM = 8
"""Longest repeated phrase looked for, in words."""
MAX_CHAR_UNIT = 10
"""Longest repeated character unit looked for inside a word ("ha" in "hahahaha")."""
MIN_CHAR_LOOP = 10
"""A character loop is cut only when it spans at least this many characters ("hahahaha" is kept)."""
MIN_DIGIT_LOOP = 20
"""Digit loops need to be longer: "1000000000" is a number, not a loop."""


def cut_repetition(text: str, *, max_repeats: int = MAX_REPEATS, max_ngram: int = MAX_NGRAM) -> tuple[str, bool]:
    """Collapse runaway repetition in ``text``; return ``(cleaned_text, cut)``.

    text: the decoded text of one chunk.
    max_repeats: consecutive copies of a word, phrase or character unit kept as they are (default 3).
    max_ngram: longest repeated phrase looked for, in words (default 8).
    A loop is replaced by one copy; an unfinished copy at the very end (the generation was stopped
    mid-loop) is dropped with it. Whitespace between words is normalised to single spaces only when
    something is cut.
    """
    if max_repeats < 1 or max_ngram < 1:
        raise ConfigError(f"max_repeats={max_repeats!r}, max_ngram={max_ngram!r}: give positive integers.")
    words = text.split()
    kept, cut_words = _cut_word_loops(words, max_repeats, max_ngram)
    cleaned = " ".join(kept) if cut_words else text
    cleaned, cut_chars = _cut_char_loops(cleaned, max_repeats)
    if cut_words or cut_chars:
        logger.debug("repetition guard: %d -> %d characters", len(text), len(cleaned))
    return cleaned, cut_words or cut_chars


def _cut_word_loops(words: list[str], max_repeats: int, max_ngram: int) -> tuple[list[str], bool]:
    keys = [word_key(w) for w in words]
    kept: list[str] = []
    cut = False
    i = 0
    while i < len(words):
        best_n, best_copies = 0, 0
        for n in range(1, min(max_ngram, (len(words) - i) // (max_repeats + 1)) + 1):
            unit = keys[i:i + n]
            copies = 1
            while keys[i + copies * n:i + (copies + 1) * n] == unit:
                copies += 1
            if copies > max_repeats and copies * n > best_copies * best_n:
                best_n, best_copies = n, copies
        if not best_n:
            kept.append(words[i])
            i += 1
            continue
        kept.extend(words[i:i + best_n])
        i += best_n * best_copies
        if _is_unfinished_copy(keys[i:], keys[i - best_n:i]):
            i = len(words)  # the generation stopped in the middle of one more copy
        cut = True
    return kept, cut


def _is_unfinished_copy(tail: list[str], unit: list[str]) -> bool:
    """True when ``tail`` is a proper beginning of ``unit``, its last word possibly cut short."""
    if not tail or len(tail) > len(unit):
        return False
    head, last = tail[:-1], tail[-1]
    return head == unit[:len(head)] and unit[len(head)].startswith(last) and tail != unit


def _cut_char_loops(text: str, max_repeats: int) -> tuple[str, bool]:
    pattern = re.compile(r"(\S{1,%d}?)\1{%d,}(\S*)" % (MAX_CHAR_UNIT, max_repeats), re.IGNORECASE)
    cut = False

    def collapse(match: re.Match[str]) -> str:
        nonlocal cut
        unit, rest = match.group(1), match.group(2)
        loop_len = len(match.group(0)) - len(rest)
        if loop_len < (MIN_DIGIT_LOOP if unit.isdigit() else MIN_CHAR_LOOP):
            return match.group(0)
        cut = True
        return unit if unit.casefold().startswith(rest.casefold()) else unit + rest

    return pattern.sub(collapse, text), cut


def max_new_tokens_for(duration_s: float, tokens_per_s: float | None, ceiling: int) -> int:
    """Cap of new tokens for a chunk: ``ceil(tokens_per_s * duration_s) + 16``, at most ``ceiling``.

    duration_s: length of the chunk's audio in seconds.
    tokens_per_s: tokens allowed per second of audio; None disables the cap (returns ``ceiling``).
    ceiling: the absolute limit, e.g. ``TranscribeOptions.max_new_tokens``.
    """
    if ceiling < 1:
        raise ConfigError(f"ceiling={ceiling!r}: give a positive number of tokens.")
    if tokens_per_s is None:
        return ceiling
    if tokens_per_s <= 0 or duration_s < 0:
        raise ConfigError(f"tokens_per_s={tokens_per_s!r}, duration_s={duration_s!r}: give positive values.")
    return min(ceiling, math.ceil(tokens_per_s * duration_s) + 16)
