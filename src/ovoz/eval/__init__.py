"""Evaluation: run models over a corpus, score them under named Uzbek normalizations, write a report.

Layers (imports point down): ``results`` (data) and ``metrics`` (counts) <- ``cache``, ``corpus``, ``score`` <-
``decode`` (through a Transcriber) and ``report``/``report_html`` (read results only) <- ``run`` (the whole run).
"""

from __future__ import annotations

from .cache import CACHE_FILE, HypothesisCache, model_key, options_key
from .corpus import read_corpus
from .decode import transcribe_utterances
from .results import (
    BASE_NAME,
    BucketScore,
    EvalResult,
    Hypothesis,
    ModelResult,
    ModelSpec,
    NormalizerScore,
    unique_names,
)
from .run import evaluate
from .score import DEFAULT_NORMALIZERS, DEFAULT_PRIMARY, DURATION_BUCKETS_S, score_hypotheses

__all__ = [
    "BASE_NAME", "CACHE_FILE", "DEFAULT_NORMALIZERS", "DEFAULT_PRIMARY", "DURATION_BUCKETS_S", "BucketScore",
    "EvalResult", "Hypothesis", "HypothesisCache", "ModelResult", "ModelSpec", "NormalizerScore", "evaluate",
    "model_key", "options_key", "read_corpus", "score_hypotheses", "transcribe_utterances", "unique_names",
]
