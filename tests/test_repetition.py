"""Repetition guard on crafted model outputs, and the token cap by duration."""

from __future__ import annotations

import pytest

from ovoz.errors import ConfigError
from ovoz.repetition import cut_repetition, max_new_tokens_for

LOOPS = [
    # (model output, expected text after the guard)
    ("rahmat rahmat rahmat rahmat rahmat rahmat", "rahmat"),
    ("men bugun " + "juda " * 40, "men bugun juda"),
    ("salom. " + "men uyga bordim. " * 12 + "men uyga", "salom. men uyga bordim."),
    ("boshida " + "bir ikki uch to'rt besh olti yetti sakkiz " * 5 + "oxiri",
     "boshida bir ikki uch to'rt besh olti yetti sakkiz oxiri"),
    ("Ha, ha, HA, ha. ha keyin gapirdi", "Ha, keyin gapirdi"),
    ("kulgi hahahahahahahahahahahahahahahaha", "kulgi ha"),
    ("voooooooooooooooooooooy", "voy"),  # what follows the loop stays
    ("ҳаҳаҳаҳаҳаҳаҳаҳаҳаҳаҳа", "ҳа"),
    ("0" * 40, "0"),
    ("hozir " + "ab" * 30 + "a", "hozir ab"),
]

LEGIT = [
    "ha ha",
    "juda juda yaxshi",
    "juda juda juda yaxshi",
    "qancha-qancha bloggerlar",
    "hahaha dedi u",
    "aaa nima",
    "1000000000 soʻm",
    "asta-sekin asta-sekin yurdi",
    "bir ikki bir ikki bir ikki",
    "Eslatib oʻtamiz, Ortiq Xoʻjayev poytaxt hokimi lavozimiga tayinlangan.",
    "",
]


@pytest.mark.parametrize(("text", "expected"), LOOPS)
def test_loops_are_cut(text, expected):
    cleaned, cut = cut_repetition(text)
    assert cut is True
    assert cleaned == expected


@pytest.mark.parametrize("text", LEGIT)
def test_legit_text_is_kept_verbatim(text):
    assert cut_repetition(text) == (text, False)


def test_loop_in_the_middle_keeps_what_follows():
    text = "birinchi gap. " + "takror " * 10 + "ikkinchi gap."
    assert cut_repetition(text) == ("birinchi gap. takror ikkinchi gap.", True)


def test_max_repeats_is_configurable():
    text = "ha ha ha ha"
    assert cut_repetition(text) == ("ha", True)
    assert cut_repetition(text, max_repeats=4) == (text, False)
    assert cut_repetition("ha ha", max_repeats=1) == ("ha", True)


def test_max_ngram_bounds_the_phrase_length():
    phrase = "bir ikki uch to'rt besh olti yetti sakkiz to'qqiz"  # 9 words
    text = " ".join([phrase] * 5)
    assert cut_repetition(text, max_ngram=8) == (text, False)
    assert cut_repetition(text, max_ngram=9) == (phrase, True)


def test_bad_guard_options():
    with pytest.raises(ConfigError):
        cut_repetition("x", max_repeats=0)


@pytest.mark.parametrize(
    ("duration_s", "tokens_per_s", "ceiling", "expected"),
    [
        (10.0, 12.0, 256, 136),
        (20.0, 12.0, 256, 256),
        (30.0, 12.0, 256, 256),
        (0.5, 12.0, 256, 22),
        (0.0, 12.0, 256, 16),
        (1.01, 10.0, 256, 27),  # ceil, never below the estimate
        (30.0, None, 300, 300),
        (5.0, 12.0, 10, 10),
    ],
)
def test_max_new_tokens_for(duration_s, tokens_per_s, ceiling, expected):
    assert max_new_tokens_for(duration_s, tokens_per_s, ceiling) == expected


def test_max_new_tokens_for_rejects_nonsense():
    with pytest.raises(ConfigError):
        max_new_tokens_for(1.0, 0.0, 256)
    with pytest.raises(ConfigError):
        max_new_tokens_for(1.0, 12.0, 0)
