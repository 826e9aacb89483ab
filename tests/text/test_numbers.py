"""Numbers written with digits -> Uzbek words (ʻ is U+02BB in every expected string)."""

import pytest

from ovoz.text import cardinal, decimal, expand_numbers, ordinal


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "nol"),
        (1, "bir"),
        (7, "yetti"),
        (10, "oʻn"),
        (11, "oʻn bir"),
        (19, "oʻn toʻqqiz"),
        (20, "yigirma"),
        (45, "qirq besh"),
        (99, "toʻqson toʻqqiz"),
        (100, "yuz"),
        (101, "yuz bir"),
        (200, "ikki yuz"),
        (999, "toʻqqiz yuz toʻqson toʻqqiz"),
        (1000, "ming"),
        (1001, "ming bir"),
        (2000, "ikki ming"),
        (2024, "ikki ming yigirma toʻrt"),
        (10_000, "oʻn ming"),
        (101_000, "yuz bir ming"),
        (1_000_000, "bir million"),
        (2_500_000, "ikki million besh yuz ming"),
        (1_000_000_000, "bir milliard"),
        (-5, "minus besh"),
    ],
)
def test_cardinal(value, words):
    assert cardinal(value) == words


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (1, "birinchi"),
        (2, "ikkinchi"),
        (3, "uchinchi"),
        (4, "toʻrtinchi"),
        (6, "oltinchi"),
        (10, "oʻninchi"),
        (20, "yigirmanchi"),
        (40, "qirqinchi"),
        (50, "ellikinchi"),
        (80, "saksoninchi"),
        (100, "yuzinchi"),
        (1000, "minginchi"),
        (1991, "ming toʻqqiz yuz toʻqson birinchi"),
    ],
)
def test_ordinal(value, words):
    assert ordinal(value) == words


@pytest.mark.parametrize(
    ("whole", "fraction", "words"),
    [
        ("2", "5", "ikki butun oʻndan besh"),
        ("0", "25", "nol butun yuzdan yigirma besh"),
        ("3", "14", "uch butun yuzdan oʻn toʻrt"),
        ("1", "005", "bir butun mingdan besh"),
    ],
)
def test_decimal(whole, fraction, words):
    assert decimal(whole, fraction) == words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # integers and thousands separators
        ("Men 25 yoshdaman", "Men yigirma besh yoshdaman"),
        ("1 000 kishi", "ming kishi"),
        ("1\u00a0000\u00a0000 soʻm", "bir million soʻm"),
        ("1.000 kishi", "ming kishi"),
        ("2.500.000", "ikki million besh yuz ming"),
        ("5000 soʻm", "besh ming soʻm"),
        ("007", "nol nol yetti"),
        ("+998 90 123 45 67", "+toʻqqiz yuz toʻqson sakkiz toʻqson yuz yigirma uch qirq besh oltmish yetti"),
        # decimals: comma always, dot unless three digits follow
        ("2,5 kg", "ikki butun oʻndan besh kg"),
        ("3.14", "uch butun yuzdan oʻn toʻrt"),
        ("1.000,5", "ming butun oʻndan besh"),
        # ordinals, years and dates
        ("5-sinf", "beshinchi sinf"),
        ("1-may", "birinchi may"),
        ("2024-yil", "ikki ming yigirma toʻrtinchi yil"),
        ("1991-yilda", "ming toʻqqiz yuz toʻqson birinchi yilda"),
        ("5\u2013oʻrin", "beshinchi oʻrin"),
        ("5-chi", "beshinchi"),
        ("3-inchisi", "uchinchisi"),
        ("12.05.2024", "oʻn ikkinchi may ikki ming yigirma toʻrtinchi yil"),
        # case endings and the counting suffix stay glued to the cardinal
        ("soat 10-da", "soat oʻnda"),
        ("5 ta olma", "beshta olma"),
        ("5ta", "beshta"),
        ("3 tadan", "uchtadan"),
        ("5 tashkilot", "besh tashkilot"),
        # times
        ("14:30", "oʻn toʻrt oʻttiz"),
        ("soat 14:00 da", "soat oʻn toʻrt da"),
        ("09:05", "toʻqqiz nol besh"),
        ("8:15:30", "sakkiz oʻn besh oʻttiz"),
        # percentages and money
        ("50%", "ellik foiz"),
        ("2,5 %", "ikki butun oʻndan besh foiz"),
        ("$10", "oʻn dollar"),
        ("10$", "oʻn dollar"),
        ("€1 000", "ming yevro"),
        ("₽500", "besh yuz rubl"),
        # signs, ranges, digits beside letters
        ("-5 daraja", "minus besh daraja"),
        ("5-10 kishi", "besh-oʻn kishi"),
        ("COVID-19", "COVID-oʻn toʻqqiz"),
        ("A4 qogʻoz", "A toʻrt qogʻoz"),
        ("raqamsiz matn", "raqamsiz matn"),
    ],
)
def test_expand_numbers(text, expected):
    assert expand_numbers(text) == expected
