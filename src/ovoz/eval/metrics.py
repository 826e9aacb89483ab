"""Word and character error rates from summed error counts, with jiwer doing the alignment.

Corpus rates are the sum of errors over the sum of reference units, never a mean of per-utterance
rates. Words are whitespace-separated tokens of the normalized text; characters are those of the
normalized text with single spaces between words (spaces count, as in jiwer's CER).

Empty text, pinned by tests:
- empty reference, empty hypothesis: no errors;
- empty reference, words in the hypothesis: every hypothesis word is an insertion (and every
  hypothesis character a character error);
- empty hypothesis: every reference word is a deletion;
- a rate whose reference count is zero is 0.0 when there are no errors and ``inf`` otherwise, so a
  corpus whose references are all empty has WER 0.0 only if the hypotheses are empty too.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ovoz.errors import DependencyError
from ovoz.text import Normalizer, get_normalizer

__all__ = [
    "Confusion",
    "ErrorCounts",
    "ScoreReport",
    "UtteranceScore",
    "count_errors",
    "score",
    "sum_counts",
    "top_confusions",
]

DEFAULT_N_CONFUSIONS = 20


def _rate(n_errors: int, n_ref: int) -> float:
    if n_ref == 0:
        return 0.0 if n_errors == 0 else math.inf
    return n_errors / n_ref


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of one utterance or a whole corpus; add two with ``+``.

    Attributes:
        substitutions: reference words replaced by another word.
        deletions: reference words missing from the hypothesis.
        insertions: hypothesis words with no reference word.
        hits: reference words recognised correctly.
        n_ref_words: words in the reference; always substitutions + deletions + hits.
        char_errors: character substitutions + deletions + insertions.
        n_ref_chars: characters in the reference, single spaces between words included.
    """

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    n_ref_words: int = 0
    char_errors: int = 0
    n_ref_chars: int = 0

    def __post_init__(self) -> None:
        values = (self.substitutions, self.deletions, self.insertions, self.hits, self.n_ref_words,
                  self.char_errors, self.n_ref_chars)  # fmt: skip
        if any(value < 0 for value in values):
            raise ValueError(f"error counts must not be negative: {self}")
        if self.n_ref_words != self.substitutions + self.deletions + self.hits:
            raise ValueError(f"n_ref_words must equal substitutions + deletions + hits: {self}")

    @property
    def n_word_errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Word error rate: word errors over reference words (0.0 or inf without reference words)."""
        return _rate(self.n_word_errors, self.n_ref_words)

    @property
    def cer(self) -> float:
        """Character error rate: character errors over reference characters."""
        return _rate(self.char_errors, self.n_ref_chars)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.hits + other.hits,
            self.n_ref_words + other.n_ref_words,
            self.char_errors + other.char_errors,
            self.n_ref_chars + other.n_ref_chars,
        )


@dataclass(frozen=True)
class Confusion:
    """A reference word the hypothesis replaced by another word, and how often."""

    reference: str
    hypothesis: str
    count: int


@dataclass(frozen=True)
class UtteranceScore:
    """One scored pair. ``index`` is its position in the input; the texts are normalized."""

    index: int
    reference: str
    hypothesis: str
    counts: ErrorCounts

    @property
    def wer(self) -> float:
        return self.counts.wer

    @property
    def cer(self) -> float:
        return self.counts.cer


@dataclass(frozen=True)
class ScoreReport:
    """Per-utterance and corpus results under one normalizer.

    Attributes:
        normalizer: the normalizer's one-line description (name and steps).
        utterances: the scored pairs, in input order.
        corpus: the summed counts of all scored pairs.
        dropped: input positions whose reference the normalizer's filter excluded.
        confusions: the most frequent substitution pairs, most frequent first.
    """

    normalizer: str
    utterances: tuple[UtteranceScore, ...]
    corpus: ErrorCounts
    dropped: tuple[int, ...] = ()
    confusions: tuple[Confusion, ...] = ()

    @property
    def wer(self) -> float:
        return self.corpus.wer

    @property
    def cer(self) -> float:
        return self.corpus.cer

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)


def _jiwer():  # returns the jiwer module
    try:
        import jiwer
    except ImportError as error:
        raise DependencyError("metrics need jiwer: pip install 'jiwer>=3.0'") from error
    return jiwer


def _align(reference: str, hypothesis: str) -> tuple[ErrorCounts, list[tuple[str, str]]]:
    """Counts and substitution pairs for one normalized pair; handles empty text without jiwer."""
    ref_words, hyp_words = reference.split(), hypothesis.split()
    ref_text, hyp_text = " ".join(ref_words), " ".join(hyp_words)
    if not ref_words or not hyp_words:
        counts = ErrorCounts(
            deletions=len(ref_words),
            insertions=len(hyp_words),
            n_ref_words=len(ref_words),
            char_errors=len(ref_text) + len(hyp_text),
            n_ref_chars=len(ref_text),
        )
        return counts, []
    jiwer = _jiwer()
    words = jiwer.process_words(ref_text, hyp_text)
    chars = jiwer.process_characters(ref_text, hyp_text)
    pairs = []
    for chunk in words.alignments[0]:
        if chunk.type == "substitute":
            pairs += zip(
                words.references[0][chunk.ref_start_idx : chunk.ref_end_idx],
                words.hypotheses[0][chunk.hyp_start_idx : chunk.hyp_end_idx],
            )
    counts = ErrorCounts(
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        hits=words.hits,
        n_ref_words=len(ref_words),
        char_errors=chars.substitutions + chars.deletions + chars.insertions,
        n_ref_chars=len(ref_text),
    )
    return counts, pairs


def count_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Word and character error counts of one pair of already-normalized texts.

    Args:
        reference: the true transcript.
        hypothesis: the recognised transcript.
    """
    return _align(reference, hypothesis)[0]


def sum_counts(counts: Iterable[ErrorCounts]) -> ErrorCounts:
    """Sum counts over utterances; the corpus WER of the result is total errors over total words."""
    return sum(counts, ErrorCounts())


def _check_pair(index: int, pair: tuple[str, str]) -> tuple[str, str]:
    reference, hypothesis = pair
    for role, text in (("reference", reference), ("hypothesis", hypothesis)):
        if not isinstance(text, str):
            raise TypeError(f"pair {index}: the {role} must be str, got {type(text).__name__}")
    return reference, hypothesis


def score(
    pairs: Iterable[tuple[str, str]],
    normalizer: str | Normalizer = "normalized",
    *,
    n_confusions: int = DEFAULT_N_CONFUSIONS,
) -> ScoreReport:
    """Normalize and score (reference, hypothesis) pairs; corpus rates come from summed counts.

    Args:
        pairs: raw (reference, hypothesis) texts.
        normalizer: a name from ``ovoz.text.available_normalizers()`` or a Normalizer; its filter
            may drop pairs by their raw reference (``published`` drops references with digits).
        n_confusions: how many of the most frequent substitution pairs to keep.

    Raises:
        ConfigError: the normalizer name is unknown.
        TypeError: a reference or hypothesis is not a string.
    """
    chosen = get_normalizer(normalizer)
    utterances, dropped = [], []
    confusions: Counter[tuple[str, str]] = Counter()
    for index, pair in enumerate(pairs):
        reference, hypothesis = _check_pair(index, pair)
        if not chosen.keep(reference):
            dropped.append(index)
            continue
        reference, hypothesis = chosen(reference), chosen(hypothesis)
        counts, substituted = _align(reference, hypothesis)
        confusions.update(substituted)
        utterances.append(UtteranceScore(index, reference, hypothesis, counts))
    return ScoreReport(
        normalizer=chosen.describe(),
        utterances=tuple(utterances),
        corpus=sum_counts(utterance.counts for utterance in utterances),
        dropped=tuple(dropped),
        confusions=_most_common(confusions, n_confusions),
    )


def _most_common(confusions: Counter[tuple[str, str]], n: int) -> tuple[Confusion, ...]:
    # Ties are broken alphabetically so that reports are stable from run to run.
    ranked = sorted(confusions.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Confusion(ref, hyp, count) for (ref, hyp), count in ranked[: max(n, 0)])


def top_confusions(pairs: Iterable[tuple[str, str]], n: int = DEFAULT_N_CONFUSIONS) -> tuple[Confusion, ...]:
    """The ``n`` most frequent (reference word, hypothesis word) substitutions of normalized pairs.

    Args:
        pairs: already-normalized (reference, hypothesis) texts.
        n: how many pairs to return.
    """
    confusions: Counter[tuple[str, str]] = Counter()
    for index, pair in enumerate(pairs):
        confusions.update(_align(*_check_pair(index, pair))[1])
    return _most_common(confusions, n)
