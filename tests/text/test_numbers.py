"""Numbers written with digits -> Uzbek words (ʻ is U+02BB in every expected string)."""

import pytest

from ovoz.text import cardinal, decimal, drop_bir_before_scale, expand_numbers, join_counting_suffix, ordinal


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


# Sources: "grammar" is the school grammar of Uzbek numerals (hisob son: the counting suffix -ta, with
# bir + ta = bitta; tartib son: -(i)nchi); "rules" is the 1995 spelling rules (Cabinet decree 339), whose
# hyphen rules write dates year first (1995-yil 24-avgust); "ISO 8601" the date format; "ovoz" marks ovoz's
# own reading conventions (module docstring of ovoz.text.numbers).
COUNTING_AND_DATES = [
    # (text, words, source)
    ("1 ta olma", "bitta olma", "grammar: bir + ta = bitta"),
    ("1ta", "bitta", "grammar: bitta"),
    ("21 ta", "yigirma bitta", "grammar: yigirma bitta"),
    ("11 tasi", "oʻn bittasi", "grammar: bitta + possessive"),
    ("101 tadan", "yuz bittadan", "grammar: bittadan"),
    ("2 ta", "ikkita", "grammar: ikkita"),
    ("1-tadan", "bittadan", "grammar: bittadan (hyphen typed)"),
    ("22 mart", "yigirma ikkinchi mart", "grammar: the day of a month is an ordinal (22-mart)"),
    ("1 may kuni", "birinchi may kuni", "grammar: day before a month name"),
    ("8 Mart", "sakkizinchi Mart", "grammar: month names in any case"),
    ("5 oktyabrda", "beshinchi oktyabrda", "ovoz: the Russian spelling and a case ending"),
    ("24-avgust", "yigirma toʻrtinchi avgust", "rules: 1995-yil 24-avgust"),
    ("32 mart", "oʻttiz ikki mart", "ovoz: no 32nd day, a cardinal"),
    ("5 martaba", "besh martaba", "ovoz: not a month name"),
    ("2025-09-18", "ikki ming yigirma beshinchi yil oʻn sakkizinchi sentabr", "ISO 8601, read year first (rules)"),
    ("2024-12-01 kuni", "ikki ming yigirma toʻrtinchi yil birinchi dekabr kuni", "ISO 8601"),
    ("2025-13-01", "ikki ming yigirma besh-oʻn uch-nol bir", "ovoz: month 13 is no date"),
]


@pytest.mark.parametrize(("text", "expected", "source"), COUNTING_AND_DATES)
def test_counting_suffix_and_dates(text, expected, source):
    assert expand_numbers(text) == expected, source


def test_bitta_is_not_birta():
    assert "birta" not in expand_numbers("1 ta, 21 ta, 1001 tasi")


@pytest.mark.parametrize(
    ("value", "plain", "with_bir"),
    [
        (100, "yuz", "bir yuz"),
        (1000, "ming", "bir ming"),
        (1100, "ming yuz", "bir ming bir yuz"),
        (101_000, "yuz bir ming", "bir yuz bir ming"),
        (21_000, "yigirma bir ming", "yigirma bir ming"),
        (2024, "ikki ming yigirma toʻrt", "ikki ming yigirma toʻrt"),
    ],
)
def test_leading_bir_is_a_choice(value, plain, with_bir):
    # grammar: both "yuz" and "bir yuz" are correct; ovoz writes the first and scores both equal.
    assert cardinal(value) == plain
    assert cardinal(value, leading_bir=True) == with_bir
    assert drop_bir_before_scale(with_bir) == plain


JOIN_TA = [
    # (text, joined, source)
    ("yigirma besh ta", "yigirma beshta", "grammar: -ta is written together with the numeral"),
    ("bir ta", "bitta", "grammar: bir + ta = bitta"),
    ("yigirma bir ta", "yigirma bitta", "grammar"),
    ("birta", "bitta", "grammar: the misspelling birta"),
    ("uch tadan", "uchtadan", "grammar: -tadan"),
    ("toʻrt tasi", "toʻrttasi", "grammar: -tasi"),
    ("besh tashkilot", "besh tashkilot", "ovoz: tashkilot is a word, not the suffix"),
    ("ota ta", "ota ta", "ovoz: only number words take the suffix"),
]


@pytest.mark.parametrize(("text", "expected", "source"), JOIN_TA)
def test_join_counting_suffix(text, expected, source):
    assert join_counting_suffix(text) == expected, source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bir yuz ellik", "yuz ellik"),
        ("bir ming toʻqqiz yuz", "ming toʻqqiz yuz"),
        ("bir mingta", "mingta"),
        ("bir yuzinchi", "yuzinchi"),
        ("bir million", "bir million"),  # bir million keeps its bir in every spelling
        ("bir yuzi qizil", "bir yuzi qizil"),  # yuzi is "its face"
        ("bir kun", "bir kun"),
        ("yigirma bir ming", "yigirma bir ming"),  # 21 000, not 20 000
        ("yuz bir ming", "yuz bir ming"),
        ("u bir ming soʻm oldi", "u ming soʻm oldi"),
    ],
)
def test_drop_bir_before_scale(text, expected):
    assert drop_bir_before_scale(text) == expected
