"""WER / CER from summed error counts."""

import math

import pytest

from ovoz.errors import ConfigError
from ovoz.eval.metrics import Confusion, ErrorCounts, count_errors, score, sum_counts, top_confusions


@pytest.mark.parametrize(
    ("reference", "hypothesis", "s", "d", "i", "h"),
    [
        ("", "", 0, 0, 0, 0),
        ("   ", "", 0, 0, 0, 0),
        ("", "bir ikki", 0, 0, 2, 0),
        ("bir ikki uch", "", 0, 3, 0, 0),
        ("bir ikki uch", "bir ikki uch", 0, 0, 0, 3),
        ("bir ikki uch", "bir olti uch", 1, 0, 0, 2),
        ("bir ikki uch", "bir uch", 0, 1, 0, 2),
        ("bir uch", "bir ikki uch", 0, 0, 1, 2),
        ("bir  ikki", " bir ikki ", 0, 0, 0, 2),  # whitespace runs are not words
    ],
)
def test_count_errors(reference, hypothesis, s, d, i, h):
    counts = count_errors(reference, hypothesis)
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.hits) == (s, d, i, h)
    assert counts.n_ref_words == s + d + h


@pytest.mark.parametrize(
    ("reference", "hypothesis", "wer", "cer"),
    [
        ("", "", 0.0, 0.0),
        ("", "salom", math.inf, math.inf),
        ("salom dunyo", "", 1.0, 1.0),
        ("salom dunyo", "salom dunyo", 0.0, 0.0),
        ("salom dunyo", "salom dunya", 0.5, 1 / 11),
        ("ab", "ab cd", 1.0, 1.5),  # 3 inserted characters (space, c, d) over 2
    ],
)
def test_rates(reference, hypothesis, wer, cer):
    counts = count_errors(reference, hypothesis)
    assert counts.wer == pytest.approx(wer)
    assert counts.cer == pytest.approx(cer)


def test_corpus_wer_is_summed_errors_over_summed_words_not_mean_of_rates():
    pairs = [
        ("bir", "ikki"),
        ("bir ikki uch to'rt besh olti yetti sakkiz to'qqiz", "bir ikki uch to'rt besh olti yetti sakkiz to'qqiz"),
    ]
    report = score(pairs, "orthographic")
    assert [u.wer for u in report.utterances] == [1.0, 0.0]
    assert report.wer == pytest.approx(1 / 10)  # the mean of rates would be 0.5
    assert report.corpus == sum_counts(u.counts for u in report.utterances)
    assert report.corpus.n_ref_words == 10


def test_empty_reference_insertions_count_in_the_corpus():
    report = score([("", "ortiqcha soʻz"), ("bir ikki", "bir ikki")], "orthographic")
    assert report.corpus.insertions == 2
    assert report.wer == pytest.approx(2 / 2)
    assert math.isinf(report.utterances[0].wer)


@pytest.mark.parametrize(("hypotheses", "wer"), [(["", " "], 0.0), (["", "nimadir"], math.inf)])
def test_corpus_of_empty_references(hypotheses, wer):
    report = score([("", hypothesis) for hypothesis in hypotheses], "normalized")
    assert report.wer == wer


def test_empty_input_scores_zero():
    report = score([], "normalized")
    assert (report.wer, report.cer, report.utterances) == (0.0, 0.0, ())


def test_score_normalizes_before_counting():
    pairs = [("O‘zbekiston, 5-sinf!", "oʻzbekiston beshinchi sinf"), ("Ўзбек тили", "o'zbek tili")]
    assert score(pairs, "normalized").wer == 0.0
    assert score(pairs, "orthographic").wer > 0.0
    assert score(pairs, "normalized").utterances[1].reference == "oʻzbek tili"


def test_published_drops_references_with_digits():
    pairs = [("5-sinf", "beshinchi sinf"), ("Salom, dunyo!", "salom dunyo"), ("2024 yil", "xato")]
    report = score(pairs, "published")
    assert report.dropped == (0, 2)
    assert report.n_dropped == 2
    assert [u.index for u in report.utterances] == [1]
    assert report.wer == 0.0
    assert report.normalizer.startswith("published")


def test_unknown_normalizer():
    with pytest.raises(ConfigError, match="choose one of"):
        score([("a", "a")], "nope")


def test_non_string_input_is_rejected():
    with pytest.raises(TypeError, match="pair 1: the hypothesis"):
        score([("a", "a"), ("a", None)])


def test_confusions_are_ranked_substitutions():
    pairs = [("men keldim", "man keldim"), ("men ketdim", "man ketdim"), ("u keldi", "o keldi"), ("bir", "")]
    assert top_confusions(pairs, n=2) == (Confusion("men", "man", 2), Confusion("u", "o", 1))
    report = score(pairs, "orthographic", n_confusions=1)
    assert report.confusions == (Confusion("men", "man", 2),)


def test_counts_add_and_validate():
    total = ErrorCounts(1, 0, 2, 3, 4, 5, 20) + ErrorCounts(0, 1, 0, 1, 2, 1, 10)
    assert total == ErrorCounts(1, 1, 2, 4, 6, 6, 30)
    assert total.wer == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="n_ref_words"):
        ErrorCounts(substitutions=1, hits=1, n_ref_words=3)
    with pytest.raises(ValueError, match="negative"):
        ErrorCounts(insertions=-1)
