"""Apostrophe unification: oʻ/gʻ get U+02BB, the tutuq gets U+02BC, quotes stay quotes."""

from pathlib import Path

import pytest

from ovoz.text import OKINA, TUTUQ, fold_apostrophes, unify_apostrophes
from ovoz.text.apostrophes import APOSTROPHE_LIKE

CV_SENTENCES = Path("/work/shared/data/text/cv_uz_sentences.txt")


def test_constants_are_the_official_code_points():
    assert (OKINA, TUTUQ) == ("\u02bb", "\u02bc")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("o'zbek", "o\u02bbzbek"),  # ASCII apostrophe
        ("o\u2018zbek", "o\u02bbzbek"),  # left single quotation mark
        ("o\u2019zbek", "o\u02bbzbek"),  # right single quotation mark
        ("o`zbek", "o\u02bbzbek"),  # backtick
        ("o\u00b4zbek", "o\u02bbzbek"),  # acute accent
        ("o\u02bczbek", "o\u02bbzbek"),  # the tutuq character typed after o
        ("o\u02bbzbek", "o\u02bbzbek"),  # already right
        ("o\u2032zbek", "o\u02bbzbek"),  # prime
        ("o\uff07zbek", "o\u02bbzbek"),  # fullwidth apostrophe
        ("O'zbekiston", "O\u02bbzbekiston"),
        ("G\u2018alaba", "G\u02bbalaba"),
        ("O\u2018ZBEKISTON", "O\u02bbZBEKISTON"),
        ("g'isht", "g\u02bbisht"),
        ("Qo\u2018qon va Farg\u2018ona", "Qo\u02bbqon va Farg\u02bbona"),
        ("ma'no", "ma\u02bcno"),
        ("ta\u2018lim", "ta\u02bclim"),
        ("san\u2019at", "san\u02bcat"),
        ("ma\u02bbno", "ma\u02bcno"),  # turned comma after a letter other than o/g
        ("e`lon", "e\u02bclon"),
        ("bog'", "bog\u02bb"),  # word-final gʻ
        ("tog\u2019 va bog\u2019.", "tog\u02bb va bog\u02bb."),
        ("man'", "man\u02bc"),  # word-final tutuq
        ("'salom'", "'salom'"),  # quotation marks, not letters
        ("\u2018salom\u2019 dedi", "\u2018salom\u2019 dedi"),
        ("u: 'bo'ldi' dedi", "u: 'bo\u02bbldi' dedi"),  # quote around a word with oʻ
        ("5' va 10'", "5' va 10'"),  # minutes of arc after digits are not letters
        ("' yolg'iz", "' yolg\u02bbiz"),
        ("'doimiy ro'yxatdan o'tish' deb", "'doimiy ro\u02bbyxatdan o\u02bbtish' deb"),  # quote over words
        ("'biz qilmaganmiz' deyishi", "'biz qilmaganmiz' deyishi"),
        ("\u2018bog\u2018\u2019", "\u2018bog\u02bb\u2019"),  # mark, then closing quote
        ("o 'zini tiydi", "o\u02bbzini tiydi"),  # USC transcription slip
        ("deb o 'yladi", "deb o\u02bbyladi"),
        ("ko 'p", "ko 'p"),
        ("mo''jiza", "mo\u02bbjiza"),  # doubled mark
        ("mo\u2018\u2019min", "mo\u02bbmin"),  # only a lone o/g is joined
    ],
)
def test_unify_apostrophes(text, expected):
    assert unify_apostrophes(text) == expected


# A few Common Voice lines (CC0) so the property test runs where the shared corpus is absent.
SAMPLE_LINES = [
    "O\u2018limdan keyingi hayotingni boshlashing uchun, hamma narsa tugaydi.",
    "Eng yaxshisi bo\u2018lish uchun sinfda a\u2019lochi bo\u2018lishga tirishardi.",
    "Ne\u2019matlaringni sanasang, o\u2018kinching kamayadi.",
    "O\u02bbsha ishni asosiy kasbiga aylantira olishi kerak.",
]


def _corpus_lines() -> list[str]:
    if CV_SENTENCES.exists():
        return CV_SENTENCES.read_text(encoding="utf-8").splitlines()
    return SAMPLE_LINES


def test_unify_is_idempotent_and_leaves_no_look_alike_inside_words():
    for line in _corpus_lines():
        once = unify_apostrophes(line)
        assert unify_apostrophes(once) == once
        for index in range(1, len(once) - 1):
            if once[index] in APOSTROPHE_LIKE and once[index - 1].isalpha() and once[index + 1].isalpha():
                assert once[index] in (OKINA, TUTUQ), line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("o\u02bbzbek ma\u02bcno", "o'zbek ma'no"),
        ("o\u2018z \u2019", "o'z '"),
        ("oddiy matn", "oddiy matn"),
    ],
)
def test_fold_apostrophes(text, expected):
    assert fold_apostrophes(text) == expected
