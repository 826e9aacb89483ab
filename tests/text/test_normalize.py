"""Normalizer steps and the ready-made normalizers."""

import subprocess
import sys

import pytest

from ovoz.errors import ConfigError, DependencyError
from ovoz.text import (
    NORMALIZED,
    PUBLISHED,
    WHISPER_BASIC,
    Normalizer,
    available_normalizers,
    casefold,
    collapse_whitespace,
    get_normalizer,
    keep_reference,
    nfc,
    remove_punctuation,
)


def test_nfc_composes():
    assert nfc("o\u0301") == "\u00f3"
    assert len(nfc("Sa\u0308")) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Oʻzbekiston", "oʻzbekiston"),
        ("OʻZBEKISTON", "oʻzbekiston"),
        ("Gʻalaba", "gʻalaba"),
        ("SHAHAR Choy", "shahar choy"),
        ("MAʼNO", "maʼno"),
        ("İstanbul", "istanbul"),  # no combining dot left behind
    ],
)
def test_casefold(text, expected):
    assert casefold(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("o'zbek", "oʻzbek"),  # one word, not "o zbek"
        ("oʻzbek,", "oʻzbek "),
        ("«Oʻzbekiston»", " Oʻzbekiston "),
        ("'salom'", " salom "),
        ("ma'no.", "maʼno "),
        ("bog'!", "bogʻ "),
        ("‘bog‘’", " bogʻ "),  # quote marks around a word ending in gʻ
        ("tag-tugi", "tag tugi"),
        ("Nima?!", "Nima  "),
    ],
)
def test_remove_punctuation_keeps_apostrophe_letters(text, expected):
    assert remove_punctuation(text) == expected


def test_collapse_whitespace():
    assert collapse_whitespace("  bir\t ikki\n uch ") == "bir ikki uch"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "O‘tgan yili Qo‘qon jamoasi o‘z maydonida Paxtakorni qabul qilgandi.",
            "oʻtgan yili qoʻqon jamoasi oʻz maydonida paxtakorni qabul qilgandi",
        ),
        ("Ma’lumot uchun, sabzi narxi keskin ko‘tarilib ketdi.", "maʼlumot uchun sabzi narxi keskin koʻtarilib ketdi"),
        ("Ўзбекистон Республикаси", "oʻzbekiston respublikasi"),
        ("Маҳалла қаерга қараяпти?", "mahalla qayerga qarayapti"),
        ("Men 5-sinfda o'qiyman.", "men beshinchi sinfda oʻqiyman"),
        ("2024-йил 1-май", "ikki ming yigirma toʻrtinchi yil birinchi may"),
        ("Narxi $10, ya'ni 125 000 so'm.", "narxi oʻn dollar yaʼni yuz yigirma besh ming soʻm"),
        ("Inflyatsiya 2,5% ga yetdi", "inflyatsiya ikki butun oʻndan besh foiz ga yetdi"),
        ("Soat 14:30 da «Navroʻz»", "soat oʻn toʻrt oʻttiz da navroʻz"),
        ("'Salom', dedi u.", "salom dedi u"),
        ("O`ZBEK  TILI", "oʻzbek tili"),
    ],
)
def test_normalized(text, expected):
    assert NORMALIZED(text) == expected


def test_normalized_makes_apostrophe_variants_and_scripts_equal():
    variants = ["O'zbekiston", "O‘zbekiston", "O’zbekiston", "O`zbekiston", "Oʻzbekiston", "Ўзбекистон"]
    assert {NORMALIZED(text) for text in variants} == {"oʻzbekiston"}


def test_normalized_step_order_is_pinned():
    # Reports print these names; apostrophes must be unified before punctuation is removed.
    assert NORMALIZED.step_names == (
        "nfc", "replace_legacy_letters", "unify_apostrophes", "to_latin", "casefold", "expand_numbers",
        "join_counting_suffix", "drop_bir_before_scale", "remove_punctuation", "collapse_whitespace",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("O‘zbekiston, 'salom' ma’no!", "o'zbekiston salom ma'no"),
        ("Oʻzbek tili", "o'zbek tili"),
        ("Bog` va tog'.", "bog' va tog'"),
        ("Ўзбек", "ўзбек"),  # published scoring does not transliterate
    ],
)
def test_published(text, expected):
    assert PUBLISHED(text) == expected


@pytest.mark.parametrize(
    ("text", "kept"),
    [("Bugun havo yaxshi", True), ("5-sinf", False), ("2024 yil", False), ("", True), ("x²", False)],
)
def test_keep_reference(text, kept):
    assert keep_reference(text) is kept


def test_only_published_drops_references():
    assert PUBLISHED.keep("5 ta") is False
    assert NORMALIZED.keep("5 ta") is True
    assert get_normalizer("orthographic").keep("5 ta") is True


def test_orthographic_is_identity():
    text = "  O‘zbek, 5-sinf! "
    assert get_normalizer("orthographic")(text) == text


def test_registry_and_descriptions():
    assert available_normalizers() == ("orthographic", "normalized", "published", "whisper-basic")
    assert get_normalizer("normalized") is NORMALIZED
    assert get_normalizer(PUBLISHED) is PUBLISHED
    assert get_normalizer("published").describe().startswith("published (nfc > unify_apostrophes")
    assert "keep_reference" in PUBLISHED.describe()
    assert get_normalizer("orthographic").describe() == "orthographic (no change)"


@pytest.mark.parametrize("name", ["Normalized", "whisper", "", None])
def test_unknown_normalizer_names_the_choices(name):
    with pytest.raises(ConfigError, match="orthographic, normalized, published, whisper-basic"):
        get_normalizer(name)


def test_custom_normalizer_from_step_names():
    custom = Normalizer.from_names("lower", ("casefold", "collapse_whitespace"))
    assert custom("  OʻZBEK  Tili ") == "oʻzbek tili"
    with pytest.raises(ConfigError, match="'stem'"):
        Normalizer.from_names("bad", ("casefold", "stem"))


# Spellings that must score as the same words under ``normalized`` (issue 19): each group is one text.
SAME_UNDER_NORMALIZED = [
    (("25 ta", "yigirma besh ta", "yigirma beshta", "25ta"), "grammar: -ta is written with the numeral"),
    (("1 ta", "bir ta", "bitta", "birta"), "grammar: bir + ta = bitta"),
    (("21 ta olma", "yigirma bir ta olma", "yigirma bitta olma"), "grammar: yigirma bitta"),
    (("150", "yuz ellik", "bir yuz ellik"), "grammar: yuz and bir yuz are both written"),
    (("1000 kishi", "ming kishi", "bir ming kishi"), "grammar: ming and bir ming"),
    (("21 000", "yigirma bir ming"), "ovoz: a bir after a number word is a digit"),
    (("22 mart", "22-mart", "yigirma ikkinchi mart"), "grammar: the day of a month is an ordinal"),
    (("Õzbekiston", "Ŏzbekiston", "Oʻzbekiston", "Ўзбекистон"), "NeMo SDP: substitute letters"),
    (("ŞAHAR", "shahar", "ШАҲАР"), "NeMo SDP: ş is sh"),
    (("Ğalaba", "Ḡalaba", "gʻalaba"), "NeMo SDP: ğ and ḡ are gʻ"),
    (("sentabr", "сентябрь"), "rule 1.1: sentabr"),
    (("maʼyus", "маъюс"), "rule 32.1: maʼyus"),
    (("Isʼhoq", "Исҳоқ"), "ovoz: сҳ is sʼh"),
]


@pytest.mark.parametrize(("spellings", "source"), SAME_UNDER_NORMALIZED)
def test_spellings_score_equal_under_normalized(spellings, source):
    assert len({NORMALIZED(text) for text in spellings}) == 1, source


def test_whisper_basic_is_transformers_normalizer():
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    texts = ["O'zbekiston [musiqa] 25 ta (kulgi) oʻzbek!", "Maʼno, ta’lim  va «san'at».", "Ўзбекистон"]
    reference = BasicTextNormalizer()
    assert [WHISPER_BASIC(text) for text in texts] == [" ".join(reference(text).split()) for text in texts]
    # What it does to Uzbek text: ASCII apostrophes split words, U+02BB stays, digits and brackets.
    assert WHISPER_BASIC("O'zbekiston [musiqa] 25 ta (kulgi) oʻzbek!") == "o zbekiston 25 ta oʻzbek"
    assert get_normalizer("whisper-basic") is WHISPER_BASIC
    assert WHISPER_BASIC.keep("5 ta") is True
    assert WHISPER_BASIC.describe() == "whisper-basic (whisper_basic > collapse_whitespace)"


def test_whisper_basic_without_transformers_names_the_fix(monkeypatch):
    from ovoz.text import normalize

    normalize._whisper_normalizer.cache_clear()
    monkeypatch.setitem(sys.modules, "transformers.models.whisper.english_normalizer", None)
    try:
        with pytest.raises(DependencyError, match=r"pip install 'transformers>=5\.17'") as raised:
            WHISPER_BASIC("salom")
        assert isinstance(raised.value, ImportError) and "BasicTextNormalizer" in str(raised.value)
    finally:
        normalize._whisper_normalizer.cache_clear()


def test_import_ovoz_text_does_not_import_transformers():
    code = "import sys, ovoz.text; sys.exit('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
