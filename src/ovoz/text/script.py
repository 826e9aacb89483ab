"""Cyrillic <-> Latin transliteration for Uzbek (the 1995 Latin alphabet, with oʻ gʻ sh ch).

Cyrillic to Latin follows the official rules: е is ``ye`` at the start of a word and after a vowel,
ь or ъ; ц is ``ts`` after a vowel and ``s`` elsewhere; ь is dropped (``y`` before о: батальон ->
batalyon); ъ is the tutuq ʼ except before е ё ю я, where it is dropped (объект -> obyekt).

Latin to Cyrillic is lossy the other way: ``ts`` stays тс (ketsa, bitsa are Uzbek words) and the
soft and hard signs of Russian loans are not restored.
"""

from __future__ import annotations

import unicodedata

from ovoz.text.apostrophes import OKINA, TUTUQ, unify_apostrophes

__all__ = ["to_cyrillic", "to_latin"]

_CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ё": "yo", "ж": "j", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s",
    "т": "t", "у": "u", "ф": "f", "х": "x", "ч": "ch", "ш": "sh", "щ": "sh", "ы": "i", "э": "e",
    "ю": "yu", "я": "ya", "ў": "o" + OKINA, "қ": "q", "ғ": "g" + OKINA, "ҳ": "h",
}  # fmt: skip
_CONTEXTUAL = frozenset("ецьъ")
_VOWELS = frozenset("аеёиоуэюяўaeiou")
_IOTATED = frozenset("еёюя")

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
        return "ts" if previous in _VOWELS else "s"
    if letter == "ь":
        return "y" if following == "о" else ""
    if letter == "ъ":
        return "" if following in _IOTATED else TUTUQ
    return _CYRILLIC_TO_LATIN[letter]


def to_latin(text: str) -> str:
    """Transliterate Uzbek Cyrillic to the Latin alphabet; Latin and other characters pass through.

    Capitalisation is kept: Шаҳар -> Shahar, ШАҲАР -> SHAHAR, Ўзбек -> Oʻzbek.

    Args:
        text: Cyrillic, Latin or mixed-script text.
    """
    text = unicodedata.normalize("NFC", text)
    pieces = []
    for index, character in enumerate(text):
        letter = character.lower()
        if letter in _CYRILLIC_TO_LATIN or letter in _CONTEXTUAL:
            pieces.append(_apply_case(_cyrillic_letter(text, index), text, index))
        else:
            pieces.append(character)
    return "".join(pieces)


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


def to_cyrillic(text: str) -> str:
    """Transliterate Uzbek Latin to Cyrillic (the ``--script cyrillic`` output option).

    Apostrophes are unified first, so o'zbek, o‘zbek and oʻzbek all become ўзбек; ``ng`` stays нг.

    Args:
        text: Uzbek Latin text; Cyrillic and other characters pass through.
    """
    text = unify_apostrophes(unicodedata.normalize("NFC", text))
    pieces = []
    index = 0
    while index < len(text):
        character = text[index]
        if character.lower() in _LATIN_TO_CYRILLIC or character == TUTUQ:
            cyrillic, width = _latin_token(text, index)
            pieces.append(_cyrillic_case(cyrillic, text[index : index + width]))
            index += width
        else:
            pieces.append(character)
            index += 1
    return "".join(pieces)
