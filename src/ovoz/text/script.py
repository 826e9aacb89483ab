"""Cyrillic <-> Latin transliteration for Uzbek (the 1995 Latin alphabet, with oʻ gʻ sh ch).

Cyrillic to Latin follows the spelling rules approved by Cabinet decree 339 (1995) and their appendix on
Cyrillic letters:

- е is ``ye`` at the start of a word and after a vowel, ь or ъ, ``e`` elsewhere.
- ц is ``ts`` between two vowels (лицей -> litsey) and ``s`` elsewhere: at the start or end of a word, after
  a consonant and after a prefix (абзац -> abzas, антициклон -> antisiklon).
- ь is dropped, except before о and и, where it is ``y`` (батальон -> batalyon, Ильин -> Ilyin).
- ъ after a consonant before е ё ю я is dropped (объект -> obyekt); after ў it is dropped too (мўъжиза ->
  moʻjiza, rule 32); everywhere else it is the tutuq ʼ (маъно -> maʼno, маъюс -> maʼyus, меъёр -> meʼyor).
- сҳ is ``sʼh``, so that it is not read as ш (Исҳоқ -> Isʼhoq, and back).
- A capital Ё, Ю, Я or Е standing alone before a full stop is an initial and becomes ``Y.`` (Ё. Жумаев ->
  Y. Jumayev); Ш. stays ``Sh.``.
- Words whose spelling is a matter of the dictionary (сентябрь -> sentabr, бюджет -> budjet) come from the
  exception list ``data/exceptions.tsv``, matched at the start of a word.

Latin to Cyrillic is lossy the other way: ``ts`` stays тс (ketsa, bitsa are Uzbek words), the soft and hard
signs of Russian loans are not restored, and ``yo`` is ё except in the listed loans (майор, район, йога).
Both directions first replace the substitute letters of older keyboards (õ ŏ -> oʻ, ğ ḡ -> gʻ, ş -> sh,
ç -> ch, ñ -> ng).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources

from ovoz.text.apostrophes import OKINA, TUTUQ, unify_apostrophes

__all__ = ["replace_legacy_letters", "to_cyrillic", "to_latin"]

_CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ё": "yo", "ж": "j", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s",
    "т": "t", "у": "u", "ф": "f", "х": "x", "ч": "ch", "ш": "sh", "щ": "sh", "ы": "i", "э": "e",
    "ю": "yu", "я": "ya", "ў": "o" + OKINA, "қ": "q", "ғ": "g" + OKINA, "ҳ": "h",
}  # fmt: skip
_CONTEXTUAL = frozenset("ецьъс")
_VOWELS = frozenset("аеёиоуэюяўыaeiou")
_IOTATED = frozenset("еёюя")
_INITIALS = frozenset("ЁЮЯЕ")
_Y_BEFORE = frozenset("ои")  # ь before these is y (appendix 2.2b)

_LATIN_TO_CYRILLIC = {
    "a": "а", "b": "б", "c": "с", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "ҳ", "i": "и",
    "j": "ж", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "қ", "r": "р",
    "s": "с", "t": "т", "u": "у", "v": "в", "w": "в", "x": "х", "y": "й", "z": "з",
}  # fmt: skip
_LATIN_DIGRAPHS = {
    "o" + OKINA: "ў", "g" + OKINA: "ғ", "sh": "ш", "ch": "ч", "yo": "ё", "yu": "ю", "ya": "я",
    "ye": "е",
}  # fmt: skip
_LATIN_VOWELS = frozenset("aeiou")

# Substitute letters of older keyboards and the 1993 alphabet, as NVIDIA NeMo's Uzbek data preparation maps them.
_LEGACY = {
    "õ": "o" + OKINA, "ŏ": "o" + OKINA, "ğ": "g" + OKINA, "ḡ": "g" + OKINA, "ş": "sh", "ç": "ch", "ñ": "ng",
}  # fmt: skip
_LEGACY_RE = re.compile("[" + "".join(_LEGACY) + "".join(_LEGACY).upper() + "]")


def _legacy(match: re.Match[str]) -> str:
    letter = match.group(0)
    latin = _LEGACY[letter.lower()]
    if letter.islower():
        return latin
    following = match.string[match.end() : match.end() + 1]
    return latin.upper() if following.isupper() else latin[0].upper() + latin[1:]


def replace_legacy_letters(text: str) -> str:
    """Replace the substitute letters õ ŏ ğ ḡ ş ç ñ by oʻ oʻ gʻ gʻ sh ch ng (ŞAHAR -> SHAHAR, Ştat -> Shtat).

    Args:
        text: Uzbek Latin text, composed (NFC) so that o + combining breve is ŏ.
    """
    if not _LEGACY_RE.search(text):
        return text
    return _LEGACY_RE.sub(_legacy, text)


@functools.cache
def _exceptions() -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]]]:
    """The exception list, indexed by the first two letters of the source stem, longest stems first."""
    to_latin: dict[str, list[tuple[str, str]]] = {}
    to_cyrillic: dict[str, list[tuple[str, str]]] = {}
    table = resources.files("ovoz.text").joinpath("data/exceptions.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in table.splitlines() if line.strip() and not line.startswith("#")]
    for cyrillic, latin, direction, *_ in rows[1:]:
        latin = unify_apostrophes(latin)
        if direction in ("both", "to_latin"):
            to_latin.setdefault(cyrillic[:2], []).append((cyrillic, latin))
        if direction in ("both", "to_cyrillic"):
            to_cyrillic.setdefault(latin[:2], []).append((latin, cyrillic))
    for index in (to_latin, to_cyrillic):
        for entries in index.values():
            entries.sort(key=lambda entry: -len(entry[0]))
    return to_latin, to_cyrillic


def _exception_at(text: str, index: int, table: dict[str, list[tuple[str, str]]]) -> tuple[str, int] | None:
    """The listed spelling of the word beginning at ``index`` and the length of its stem, if one is listed."""
    entries = table.get(text[index : index + 2].lower())
    if entries is None:
        return None
    for stem, replacement in entries:
        source = text[index : index + len(stem)]
        if source.lower() == stem:
            return _case_like(replacement, source), len(stem)
    return None


def _case_like(replacement: str, source: str) -> str:
    if source.isupper() and len(source) > 1:
        return replacement.upper()
    if source[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def _lower_at(text: str, index: int) -> str:
    return text[index].lower() if 0 <= index < len(text) else ""


def _is_upper_letter(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isalpha() and text[index].isupper()


def _apply_case(latin: str, text: str, index: int) -> str:
    """Case the Latin rendering of ``text[index]``: Sh in a capitalised word, SH in an all-caps one."""
    if not text[index].isupper() or not latin:
        return latin
    if len(latin) == 1:
        return latin.upper()
    following = index + 1
    next_is_letter = following < len(text) and text[following].isalpha()
    all_caps = _is_upper_letter(text, following) or (not next_is_letter and _is_upper_letter(text, index - 1))
    return latin.upper() if all_caps else latin[0].upper() + latin[1:]


def _cyrillic_letter(text: str, index: int) -> str:
    letter = text[index].lower()
    previous = _lower_at(text, index - 1)
    following = _lower_at(text, index + 1)
    if letter == "е":
        at_start = not previous.isalpha()
        return "ye" if at_start or previous in _VOWELS or previous in "ьъ" else "e"
    if letter == "ц":
        return "ts" if previous in _VOWELS and following in _VOWELS else "s"
    if letter == "ь":
        return "y" if following in _Y_BEFORE else ""
    if letter == "ъ":
        if previous == "ў" or (following in _IOTATED and previous.isalpha() and previous not in _VOWELS):
            return ""
        return TUTUQ
    if letter == "с":
        return "s" + TUTUQ if following == "ҳ" else "s"
    return _CYRILLIC_TO_LATIN[letter]


_WORD = re.compile(r"[^\W\d_]+")  # a run of letters (oʻ and ʼ are letters); rules look no further than it
_CACHE_WORDS = 1 << 16  # words are transliterated once each: speech transcripts repeat most of theirs


@functools.lru_cache(maxsize=_CACHE_WORDS)
def _latin_word(word: str) -> str:
    listed = _exception_at(word, 0, _exceptions()[0])
    pieces, start = ([listed[0]], listed[1]) if listed else ([], 0)
    for index in range(start, len(word)):
        letter = word[index].lower()
        if letter in _CYRILLIC_TO_LATIN or letter in _CONTEXTUAL:
            pieces.append(_apply_case(_cyrillic_letter(word, index), word, index))
        else:
            pieces.append(word[index])
    return "".join(pieces)


def _latin_match(match: re.Match[str]) -> str:
    word = match.group(0)
    if len(word) == 1 and word in _INITIALS and match.string[match.end() : match.end() + 1] == ".":
        return "Y"  # an initial: Ё. Жумаев -> Y. Jumayev
    return _latin_word(word)


_CYRILLIC_LETTER = re.compile("[" + "".join(_CYRILLIC_TO_LATIN) + "".join(_CONTEXTUAL) + "]", re.IGNORECASE)


def to_latin(text: str) -> str:
    """Transliterate Uzbek Cyrillic to the Latin alphabet; Latin and other characters pass through.

    Capitalisation is kept: Шаҳар -> Shahar, ШАҲАР -> SHAHAR, Ўзбек -> Oʻzbek. The module docstring lists
    the rules; listed dictionary spellings win over them (Сентябрда -> Sentabrda).

    Args:
        text: Cyrillic, Latin or mixed-script text.
    """
    text = replace_legacy_letters(unicodedata.normalize("NFC", text))
    if not _CYRILLIC_LETTER.search(text):
        return text
    return _WORD.sub(_latin_match, text)


def _cyrillic_case(cyrillic: str, source: str) -> str:
    if not source[0].isupper():
        return cyrillic
    if len(cyrillic) > 1 and len(source) > 1 and source[-1].isupper():
        return cyrillic.upper()
    return cyrillic[0].upper() + cyrillic[1:]


def _latin_token(text: str, index: int) -> tuple[str, int]:
    """The Cyrillic for the Latin letter(s) at ``index`` and how many characters they take."""
    lower = text[index : index + 3].lower()
    if lower == "s" + TUTUQ + "h":  # Isʼhoq: the tutuq only separates s from h
        return "сҳ", 3
    pair = lower[:2]
    if pair == "yo" and lower[2:3] == OKINA:  # yoʻl -> йўл, not ёʻл
        return "й", 1
    if pair in _LATIN_DIGRAPHS:
        return _LATIN_DIGRAPHS[pair], 2
    letter = lower[:1]
    if letter == "e":
        previous = _lower_at(text, index - 1)
        return ("э" if not previous.isalpha() or previous in _LATIN_VOWELS else "е"), 1
    if letter == TUTUQ:
        return "ъ", 1
    return _LATIN_TO_CYRILLIC.get(letter, text[index]), 1


@functools.lru_cache(maxsize=_CACHE_WORDS)
def _cyrillic_word(word: str) -> str:
    listed = _exception_at(word, 0, _exceptions()[1])
    pieces, index = ([listed[0]], listed[1]) if listed else ([], 0)
    while index < len(word):
        character = word[index]
        if character.lower() in _LATIN_TO_CYRILLIC or character == TUTUQ:
            cyrillic, width = _latin_token(word, index)
            pieces.append(_cyrillic_case(cyrillic, word[index : index + width]))
            index += width
        else:
            pieces.append(character)
            index += 1
    return "".join(pieces)


_LATIN_LETTER = re.compile("[a-z" + TUTUQ + "]", re.IGNORECASE)


def to_cyrillic(text: str) -> str:
    """Transliterate Uzbek Latin to Cyrillic (the ``--script cyrillic`` output option).

    Apostrophes are unified first, so o'zbek, o‘zbek and oʻzbek all become ўзбек; ``ng`` stays нг; listed
    loans keep й before a vowel (mayor -> майор, rayon -> район).

    Args:
        text: Uzbek Latin text; Cyrillic and other characters pass through.
    """
    text = unify_apostrophes(replace_legacy_letters(unicodedata.normalize("NFC", text)))
    if not _LATIN_LETTER.search(text):
        return text
    return _WORD.sub(lambda match: _cyrillic_word(match.group(0)), text)
