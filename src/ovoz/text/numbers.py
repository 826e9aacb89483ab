"""Numbers written with digits, spelled out as Uzbek words (Latin script, official apostrophes).

Conventions (the spoken forms that Uzbek speech transcripts use, e.g. the USC corpus):

- 100 is ``yuz`` and 1000 is ``ming`` (no leading ``bir``); 1 000 000 is ``bir million``.
- Decimals use the standard ``butun ... -dan`` form: 2,5 -> ikki butun oʻndan besh,
  3,14 -> uch butun yuzdan oʻn toʻrt; the fraction is read as written (2,50 -> ... yuzdan ellik).
  The comma is the decimal separator; a dot is one too unless exactly three digits follow it.
- Thousands separators: a space (also no-break and thin), or a dot, before groups of three digits.
- ``N-word`` is an ordinal: 5-sinf -> beshinchi sinf, 2024-yil -> ikki ming yigirma toʻrtinchi yil;
  ``N-chi`` / ``N-inchi`` glue to it (5-chi -> beshinchi); case endings glue to the cardinal
  (10-da -> oʻnda), and so does the counting suffix ta (5 ta, 5ta -> beshta).
- 14:30 -> oʻn toʻrt oʻttiz; 14:00 -> oʻn toʻrt; 09:05 -> toʻqqiz nol besh.
- 50% -> ellik foiz; $10 and 10$ -> oʻn dollar (also € yevro, £ funt, ₽ rubl); 5000 soʻm is an
  ordinary number followed by the word.
- 12.05.2024 -> oʻn ikkinchi may ikki ming yigirma toʻrtinchi yil.
- A number with a leading zero (007) or longer than 18 digits is read digit by digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ovoz.text.apostrophes import OKINA

__all__ = ["cardinal", "decimal", "expand_numbers", "ordinal"]

_O = "o" + OKINA
_ONES = ("", "bir", "ikki", "uch", f"t{_O}rt", "besh", "olti", "yetti", "sakkiz", f"t{_O}qqiz")
_TENS = ("", f"{_O}n", "yigirma", f"{_O}ttiz", "qirq", "ellik", "oltmish", "yetmish", "sakson", f"t{_O}qson")
_SCALES = ("", "ming", "million", "milliard", "trillion", "kvadrillion")
_MAX_DIGITS = 3 * len(_SCALES)
_FRACTION_DENOMINATORS = ("", f"{_O}n", "yuz", "ming", f"{_O}n ming", "yuz ming", "million")
_MONTHS = ("yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avgust", "sentabr",
           "oktabr", "noyabr", "dekabr")  # fmt: skip
_CURRENCIES = {"$": "dollar", "€": "yevro", "£": "funt", "₽": "rubl"}
# Endings after "N-" that make a case form of the cardinal rather than an ordinal.
_CASE_ENDINGS = frozenset(("ta", "tasi", "tadan", "ga", "da", "dan", "ni", "ning", "gacha", "dagi"))
_ORDINAL_ENDING = re.compile(r"^i?n?chi")


def _triad(value: int) -> list[str]:
    hundreds, rest = divmod(value, 100)
    words = []
    if hundreds:
        words += ["yuz"] if hundreds == 1 else [_ONES[hundreds], "yuz"]
    tens, ones = divmod(rest, 10)
    words += [word for word in (_TENS[tens], _ONES[ones]) if word]
    return words


def _digits(digits: str) -> str:
    return " ".join(cardinal(int(digit)) for digit in digits)


def cardinal(value: int) -> str:
    """Spell a whole number in Uzbek words: 2024 -> ikki ming yigirma toʻrt.

    Args:
        value: the number; negative numbers get ``minus``.
    """
    if value < 0:
        return "minus " + cardinal(-value)
    if value == 0:
        return "nol"
    if len(str(value)) > _MAX_DIGITS:
        return _digits(str(value))
    words: list[str] = []
    for scale in range(len(_SCALES) - 1, -1, -1):
        group = value // 1000**scale % 1000
        if not group:
            continue
        if scale == 1 and group == 1:
            words.append("ming")
        else:
            words += _triad(group) + ([_SCALES[scale]] if scale else [])
    return " ".join(words)


def _suffix_ordinal(words: str) -> str:
    return words + ("nchi" if words[-1] in "aeiou" else "inchi")


def ordinal(value: int) -> str:
    """Spell an ordinal number: 5 -> beshinchi, 20 -> yigirmanchi, 2024 -> ... yigirma toʻrtinchi.

    Args:
        value: a whole number, zero or more.
    """
    return _suffix_ordinal(cardinal(value))


def decimal(whole: str, fraction: str) -> str:
    """Spell a decimal fraction from its digits: ("2", "5") -> ikki butun oʻndan besh.

    Args:
        whole: the digits before the separator.
        fraction: the digits after it, as written.
    """
    head = _integer_words(whole) + " butun"
    if len(fraction) >= len(_FRACTION_DENOMINATORS):
        return f"{head} {_digits(fraction)}"
    return f"{head} {_FRACTION_DENOMINATORS[len(fraction)]}dan {cardinal(int(fraction))}"


def _integer_words(digits: str) -> str:
    digits = re.sub(r"\D", "", digits)
    if (len(digits) > 1 and digits[0] == "0") or len(digits) > _MAX_DIGITS:
        return _digits(digits)
    return cardinal(int(digits))


_SPACE = "[ \u00a0\u202f]"
# A whole number: 3-digit groups after a space or dot (1 000, 1.000.000), or plain digits.
# Space-separated groups must not touch other digit groups (+998 90 123 45 67 is read group by group).
_INTEGER_RE = (
    rf"(?<![\d.,])(?:(?<!\d{_SPACE})\d{{1,3}}(?:(?:{_SPACE}|\.)\d{{3}})+(?!\d)(?!\.\d)(?!{_SPACE}\d)"
    r"|\d+)"
)
_NUMBER = _INTEGER_RE + r"(?:[.,]\d+)?"


def _ordinal_words(digits: str) -> str:
    return _suffix_ordinal(_integer_words(digits))


def _number_words(text: str) -> str:
    """Words for a matched number: grouped integer, plain integer or decimal."""
    match = re.fullmatch(rf"({_INTEGER_RE})(?:[.,](\d+))?", text)
    assert match is not None, text  # the callers only pass text that _NUMBER matched
    whole, fraction = match.groups()
    return decimal(whole, fraction) if fraction else _integer_words(whole)


def _time(match: re.Match[str]) -> str:
    hours, minutes, seconds = match.groups()
    words = [cardinal(int(hours))]
    for part in (minutes, seconds):
        if part and part != "00":
            words.append(_digits(part) if part[0] == "0" else cardinal(int(part)))
    return " ".join(words)


def _date(match: re.Match[str]) -> str:
    day, month, year = (int(group) for group in match.groups())
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return match.group(0).replace(".", " ")
    return f"{ordinal(day)} {_MONTHS[month - 1]} {ordinal(year)} yil"


def _currency(match: re.Match[str]) -> str:
    amount = match.group("amount") or match.group("amount_after")
    symbol = match.group("before") or match.group("after")
    return f"{_number_words(amount)} {_CURRENCIES[symbol]}"


def _hyphen_suffix(match: re.Match[str]) -> str:
    number, ending = match.group("number"), match.group("ending")
    glued = _ORDINAL_ENDING.match(ending.lower())
    if glued:
        return _ordinal_words(number) + ending[glued.end() :]
    if ending.lower() in _CASE_ENDINGS:
        return _integer_words(number) + ending
    return f"{_ordinal_words(number)} {ending}"


_CURRENCY_SYMBOLS = "".join(re.escape(symbol) for symbol in _CURRENCIES)
_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(?<!\d)(\d{1,2})\.(\d{1,2})\.(\d{4})(?!\d)"), _date),
    (re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?![\d:])"), _time),
    (
        re.compile(
            rf"(?P<before>[{_CURRENCY_SYMBOLS}]){_SPACE}?(?P<amount>{_NUMBER})"
            rf"|(?P<amount_after>{_NUMBER}){_SPACE}?(?P<after>[{_CURRENCY_SYMBOLS}])"
        ),
        _currency,
    ),
    (re.compile(rf"({_NUMBER}){_SPACE}?%"), lambda match: _number_words(match.group(1)) + " foiz"),
    (
        re.compile(rf"(?P<number>{_INTEGER_RE})[-\u2013](?P<ending>[^\W\d_]+)"),
        _hyphen_suffix,
    ),
    (
        re.compile(rf"({_INTEGER_RE}){_SPACE}?(ta(?:si|dan|gina)?)\b"),
        lambda match: _integer_words(match.group(1)) + match.group(2),
    ),
    (re.compile(r"(?:(?<=\s)|^)[-\u2212](?=\d)"), lambda match: "minus"),
    (re.compile(_NUMBER), lambda match: _number_words(match.group(0))),
)


def _padded(
    replace: Callable[[re.Match[str]], str],
) -> Callable[[re.Match[str]], str]:
    """Wrap a replacement so that words never fuse with letters or digits beside the match."""

    def wrapper(match: re.Match[str]) -> str:
        words = replace(match)
        source = match.string
        before = source[match.start() - 1] if match.start() > 0 else ""
        after = source[match.end()] if match.end() < len(source) else ""
        left = " " if before.isalnum() else ""
        right = " " if after.isalnum() else ""
        return f"{left}{words}{right}"

    return wrapper


def expand_numbers(text: str) -> str:
    """Replace numbers written with digits by Uzbek words (see the module docstring for the forms).

    Args:
        text: Uzbek Latin text; run apostrophe unification and transliteration first.
    """
    if not any(character.isdigit() for character in text):
        return text
    for pattern, replace in _RULES:
        text = pattern.sub(_padded(replace), text)
    return text
