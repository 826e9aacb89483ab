"""Numbers written with digits, spelled out as Uzbek words (Latin script, official apostrophes).

Conventions (the spoken forms that Uzbek speech transcripts use, e.g. the USC corpus):

- 100 is ``yuz`` and 1000 is ``ming`` (no leading ``bir``; ``cardinal(..., leading_bir=True)`` writes
  ``bir yuz``, ``bir ming``); 1 000 000 is ``bir million``. The ``normalized`` scorer drops a written
  ``bir`` before ``yuz``/``ming`` (``drop_bir_before_scale``), so both spellings score equal.
- Decimals use the standard ``butun ... -dan`` form: 2,5 -> ikki butun oʻndan besh,
  3,14 -> uch butun yuzdan oʻn toʻrt; the fraction is read as written (2,50 -> ... yuzdan ellik).
  The comma is the decimal separator; a dot is one too unless exactly three digits follow it.
- Thousands separators: a space (also no-break and thin), or a dot, before groups of three digits.
- ``N-word`` is an ordinal: 5-sinf -> beshinchi sinf, 2024-yil -> ikki ming yigirma toʻrtinchi yil;
  ``N-chi`` / ``N-inchi`` glue to it (5-chi -> beshinchi); case endings glue to the cardinal
  (10-da -> oʻnda), and so does the counting suffix ta (5 ta, 5ta -> beshta); bir + ta is ``bitta``
  (1 ta -> bitta, 21 ta -> yigirma bitta). ``join_counting_suffix`` glues a ta written apart from a
  number word (yigirma besh ta -> yigirma beshta).
- 14:30 -> oʻn toʻrt oʻttiz; 14:00 -> oʻn toʻrt; 09:05 -> toʻqqiz nol besh.
- 50% -> ellik foiz; $10 and 10$ -> oʻn dollar (also € yevro, £ funt, ₽ rubl); 5000 soʻm is an
  ordinary number followed by the word.
- 12.05.2024 -> oʻn ikkinchi may ikki ming yigirma toʻrtinchi yil; the ISO form 2025-09-18 is read in
  the Uzbek order, year first: ikki ming yigirma beshinchi yil oʻn sakkizinchi sentabr.
- A day number before a month name is an ordinal: 22 mart -> yigirma ikkinchi mart (22-mart too).
- A number with a leading zero (007) or longer than 18 digits is read digit by digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ovoz.text.apostrophes import OKINA

__all__ = ["cardinal", "decimal", "drop_bir_before_scale", "expand_numbers", "join_counting_suffix", "ordinal"]

_O = "o" + OKINA
_ONES = ("", "bir", "ikki", "uch", f"t{_O}rt", "besh", "olti", "yetti", "sakkiz", f"t{_O}qqiz")
_TENS = ("", f"{_O}n", "yigirma", f"{_O}ttiz", "qirq", "ellik", "oltmish", "yetmish", "sakson", f"t{_O}qson")
_SCALES = ("", "ming", "million", "milliard", "trillion", "kvadrillion")
_MAX_DIGITS = 3 * len(_SCALES)
_FRACTION_DENOMINATORS = ("", f"{_O}n", "yuz", "ming", f"{_O}n ming", "yuz ming", "million")
_MONTHS = ("yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avgust", "sentabr",
           "oktabr", "noyabr", "dekabr")  # fmt: skip
_MONTH_SPELLINGS = _MONTHS + ("sentyabr", "oktyabr")  # the Russian spellings people still type
_CURRENCIES = {"$": "dollar", "€": "yevro", "£": "funt", "₽": "rubl"}
# Endings after "N-" that make a case form of the cardinal rather than an ordinal.
_CASE_ENDINGS = frozenset(("ta", "tasi", "tadan", "ga", "da", "dan", "ni", "ning", "gacha", "dagi"))
_ORDINAL_ENDING = re.compile(r"^i?n?chi")


def _triad(value: int, leading_bir: bool = False) -> list[str]:
    hundreds, rest = divmod(value, 100)
    words = []
    if hundreds:
        words += ["yuz"] if hundreds == 1 and not leading_bir else [_ONES[hundreds], "yuz"]
    tens, ones = divmod(rest, 10)
    words += [word for word in (_TENS[tens], _ONES[ones]) if word]
    return words


def _digits(digits: str) -> str:
    return " ".join(cardinal(int(digit)) for digit in digits)


def cardinal(value: int, *, leading_bir: bool = False) -> str:
    """Spell a whole number in Uzbek words: 2024 -> ikki ming yigirma toʻrt.

    Args:
        value: the number; negative numbers get ``minus``.
        leading_bir: write ``bir`` before a lone ``yuz`` or ``ming`` (100 -> bir yuz, 1100 -> bir ming
            bir yuz). Off by default: speech transcripts (and ``expand_numbers``) say ``yuz``, ``ming``.
    """
    if value < 0:
        return "minus " + cardinal(-value, leading_bir=leading_bir)
    if value == 0:
        return "nol"
    if len(str(value)) > _MAX_DIGITS:
        return _digits(str(value))
    words: list[str] = []
    for scale in range(len(_SCALES) - 1, -1, -1):
        group = value // 1000**scale % 1000
        if not group:
            continue
        if scale == 1 and group == 1 and not leading_bir:
            words.append("ming")
        else:
            words += _triad(group, leading_bir) + ([_SCALES[scale]] if scale else [])
    return " ".join(words)


def _suffix_ordinal(words: str) -> str:
    return words + ("nchi" if words[-1] in "aeiou" else "inchi")


def ordinal(value: int, *, leading_bir: bool = False) -> str:
    """Spell an ordinal number: 5 -> beshinchi, 20 -> yigirmanchi, 2024 -> ... yigirma toʻrtinchi.

    Args:
        value: a whole number, zero or more.
        leading_bir: as in ``cardinal``.
    """
    return _suffix_ordinal(cardinal(value, leading_bir=leading_bir))


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


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = (int(group) for group in match.groups())
    return f"{ordinal(year)} yil {ordinal(day)} {_MONTHS[month - 1]}"


def _day_of_month(match: re.Match[str]) -> str:
    return ordinal(int(match.group(1))) + match.group(2)


def _with_ta(words: str, ending: str) -> str:
    """Glue a case ending or the counting suffix to cardinal words; bir + ta is bitta (21 ta -> yigirma bitta)."""
    if ending[:2].lower() == "ta" and words.endswith("bir"):
        return words[:-1] + "t" + ending
    return words + ending


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
        return _with_ta(_integer_words(number), ending)
    return f"{_ordinal_words(number)} {ending}"


_CURRENCY_SYMBOLS = "".join(re.escape(symbol) for symbol in _CURRENCIES)
_MONTH_NAMES = "|".join(_MONTH_SPELLINGS)
_MONTH_ENDINGS = "ning|ni|ga|gacha|da|dagi|dan|ida|idagi|idan|iga"
_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(?<![\d.\-])(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?![\d\-])"), _iso_date),
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
        lambda match: _with_ta(_integer_words(match.group(1)), match.group(2)),
    ),
    (
        re.compile(
            rf"(?<![\d.,:])(0?[1-9]|[12]\d|3[01])({_SPACE}+(?:{_MONTH_NAMES})(?:{_MONTH_ENDINGS})?)(?![^\W\d_])",
            re.IGNORECASE,
        ),
        _day_of_month,
    ),
    (re.compile(r"(?:(?<=\s)|^)[-\u2212](?=\d)"), lambda match: "minus"),
    (re.compile(_NUMBER), lambda match: _number_words(match.group(0))),
)


_DIGIT = re.compile(r"\d")  # every rule needs one; found in C


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
    if not _DIGIT.search(text):
        return text
    for pattern, replace in _RULES:
        text = pattern.sub(_padded(replace), text)
    return text


_DIGIT_WORDS = frozenset(word for word in _ONES + _TENS + ("yuz",) if word)  # a bir after these is a digit
_NUMBER_WORDS = "|".join(word for word in _ONES + _TENS + ("yuz",) + _SCALES + ("nol",) if word)
_SEPARATE_TA = re.compile(rf"(?<![^\W\d_])({_NUMBER_WORDS})\s+(ta(?:si|dan|gina)?)(?![^\W\d_])", re.IGNORECASE)
_TA_GATE = re.compile(r"(?:\s|bir)ta(?:si|dan|gina)?(?![^\W\d_])", re.IGNORECASE)
_BIRTA = re.compile(r"(?<![^\W\d_])(b)ir(ta(?:si|dan|gina)?)(?![^\W\d_])", re.IGNORECASE)


def join_counting_suffix(text: str) -> str:
    """Glue the counting suffix ta to the number word before it: yigirma besh ta -> yigirma beshta.

    ``bir ta`` and the misspelling ``birta`` become ``bitta``, the form ``expand_numbers`` writes for 1 ta;
    only ta, tasi, tadan and tagina count (besh tashkilot stays two words).

    Args:
        text: Uzbek Latin text with numbers already spelled out.
    """
    if not _TA_GATE.search(text):
        return text
    text = _SEPARATE_TA.sub(lambda match: _with_ta(match.group(1), match.group(2)), text)
    return _BIRTA.sub(lambda match: match.group(1) + "it" + match.group(2), text)


_BIR_BEFORE_SCALE = re.compile(
    r"(?<![^\W\d_])bir\s+(?=(?:ming[^\W\d_]*|yuz|yuzta[^\W\d_]*|yuzinchi[^\W\d_]*)(?![^\W\d_]))",
    re.IGNORECASE,
)


def drop_bir_before_scale(text: str) -> str:
    """Drop a written ``bir`` before ``yuz`` or ``ming``: bir yuz -> yuz, bir ming besh -> ming besh.

    A ``bir`` after a ones, tens or ``yuz`` word is a digit of the number and stays (yigirma bir ming).

    ``expand_numbers`` writes 100 and 1000 without ``bir``; people write both. This is the choice of the
    ``normalized`` scorer, so that the two spellings score equal. ``bir million`` keeps its ``bir``.

    Args:
        text: Uzbek Latin text with numbers already spelled out.
    """
    if "bir" not in text and "BIR" not in text and "Bir" not in text:
        return text
    return _BIR_BEFORE_SCALE.sub(_drop_bir, text)


def _drop_bir(match: re.Match[str]) -> str:
    # yigirma bir ming is 21 000 and yuz bir ming 101 000: a bir after a ones, tens or yuz word is a digit
    # and stays; after ming or million it starts the next group (ming bir yuz = ming yuz = 1100).
    before = match.string[: match.start()].split()
    return match.group(0) if before and before[-1].lower() in _DIGIT_WORDS else ""
