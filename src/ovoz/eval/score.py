"""Scoring hypotheses under named normalizations, with WER by duration bucket."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .results import BucketScore, Hypothesis, NormalizerScore

if TYPE_CHECKING:
    from ..data import Utterance
    from .metrics import ScoreReport

DEFAULT_NORMALIZERS = ("orthographic", "normalized", "published")
DEFAULT_PRIMARY = "normalized"
DURATION_BUCKETS_S = (0.0, 2.0, 5.0, 10.0, 20.0, 30.0, math.inf)
"""Edges of the duration buckets, in seconds (each bucket is [low, high))."""


def _buckets(report: ScoreReport, durations: Sequence[float], edges: Sequence[float]) -> tuple[BucketScore, ...]:
    from .metrics import sum_counts

    result = []
    for low, high in itertools.pairwise(edges):
        inside = [u.counts for u in report.utterances if low <= durations[u.index] < high]
        if inside:
            result.append(BucketScore(low, high, len(inside), sum_counts(inside)))
    return tuple(result)


def score_hypotheses(
    utterances: Sequence[Utterance],
    hypotheses: Sequence[Hypothesis],
    normalizers: Sequence[str] = DEFAULT_NORMALIZERS,
    *,
    n_confusions: int = 20,
    bucket_edges_s: Sequence[float] = DURATION_BUCKETS_S,
) -> dict[str, NormalizerScore]:
    """Score hypotheses (in the utterances' order) under each normalization; failures score as empty.

    Args:
        utterances: the references, in corpus order.
        hypotheses: one per utterance, same order.
        normalizers: names from ``ovoz.text.available_normalizers()``.
        n_confusions: how many of the most frequent word substitutions to keep.
        bucket_edges_s: increasing duration edges in seconds for the WER-by-duration table.
    """
    from .metrics import score

    if len(utterances) != len(hypotheses):
        raise ValueError("one hypothesis per utterance is needed")
    pairs = [(u.text or "", h.text if h.error is None else "") for u, h in zip(utterances, hypotheses)]
    durations = [h.duration_s or (u.duration_s or 0.0) for u, h in zip(utterances, hypotheses)]
    scores = {}
    for name in normalizers:
        report = score(pairs, name, n_confusions=n_confusions)
        scores[name] = NormalizerScore(name, report, _buckets(report, durations, bucket_edges_s))
    return scores


# ---------------------------------------------------------------- the whole run


def check_normalizers(normalizers: Sequence[str], primary: str) -> tuple[str, ...]:
    """The normalizer names without repeats, each one known and ``primary`` among them."""
    from ..text import get_normalizer

    chosen = tuple(dict.fromkeys(normalizers))
    if not chosen:
        raise ConfigError("give at least one normalizer")
    for name in chosen:
        get_normalizer(name)  # raises ConfigError naming the valid choices
    if primary not in chosen:
        raise ConfigError(f"the normalizer to sort by ({primary}) must be one of those scored: {', '.join(chosen)}")
    return chosen
