"""Apostrophes in Uzbek Latin: the oʻ/gʻ letter mark (U+02BB) and the tutuq belgisi (U+02BC).

People type the two marks with a dozen look-alike characters. ``unify_apostrophes`` rewrites every
look-alike that is part of a word to the official character; apostrophes that are quotation marks
are left alone so that a later punctuation step can remove them.
"""

from __future__ import annotations

__all__ = [
    "APOSTROPHE_LIKE",
    "OKINA",
    "TUTUQ",
    "fold_apostrophes",
    "unify_apostrophes",
]

OKINA = "\u02bb"  # MODIFIER LETTER TURNED COMMA: the mark of oʻ and gʻ
TUTUQ = "\u02bc"  # MODIFIER LETTER APOSTROPHE: the tutuq belgisi (maʼno, taʼlim, sanʼat)

APOSTROPHE_LIKE = frozenset(
    "'"  # U+0027 APOSTROPHE
    "`"  # U+0060 GRAVE ACCENT
    "\u00b4"  # ACUTE ACCENT
    "\u02b9"  # MODIFIER LETTER PRIME
    "\u02bb"  # MODIFIER LETTER TURNED COMMA
    "\u02bc"  # MODIFIER LETTER APOSTROPHE
    "\u02bd"  # MODIFIER LETTER REVERSED COMMA
    "\u02be"  # MODIFIER LETTER RIGHT HALF RING
    "\u02bf"  # MODIFIER LETTER LEFT HALF RING
    "\u02ca"  # MODIFIER LETTER ACUTE ACCENT
    "\u02cb"  # MODIFIER LETTER GRAVE ACCENT
    "\u2018"  # LEFT SINGLE QUOTATION MARK
    "\u2019"  # RIGHT SINGLE QUOTATION MARK
    "\u201b"  # SINGLE HIGH-REVERSED-9 QUOTATION MARK
    "\u2032"  # PRIME
    "\ua78c"  # LATIN SMALL LETTER SALTILLO
    "\uff07"  # FULLWIDTH APOSTROPHE
)

_OKINA_BASES = frozenset("oOgG")
# Characters that are themselves letters: they stay marks even where a quote would not.
_MODIFIER_LETTERS = frozenset((OKINA, TUTUQ, "\u02b9", "\u02bd", "\u02be", "\u02bf", "\u02ca", "\u02cb"))


def _is_letter(character: str) -> bool:
    return character.isalpha() and character not in APOSTROPHE_LIKE


def _detached_okina(text: str, index: int) -> bool:
    """Whether ``index`` is the mark of "o 'zini": a lone o/g, one space, the mark, a letter."""
    return (
        index >= 2
        and text[index - 1] == " "
        and text[index - 2] in _OKINA_BASES
        and (index == 2 or not text[index - 3].isalnum())
        and index + 1 < len(text)
        and _is_letter(text[index + 1])
    )


def unify_apostrophes(text: str) -> str:
    """Rewrite apostrophe look-alikes inside words to U+02BB after o/g and U+02BC elsewhere.

    A look-alike between two letters is always a mark. One after a letter at the end of a word
    (bogʻ, togʻ, manʼ) is a mark too, unless a single quote opened earlier ('salom', 'doimiy
    roʻyxat') is still open: then it closes that quote. Of two look-alikes after a final letter
    (‘bog‘’) the first is the mark; a doubled mark between letters (mo''jiza) is one mark.
    "o 'zini", a transcription slip, becomes "oʻzini". Other look-alikes that follow no letter
    are left unchanged.

    Args:
        text: Uzbek Latin text in any apostrophe convention.
    """
    pieces: list[str] = []
    quote_open = False
    for index, character in enumerate(text):
        if character not in APOSTROPHE_LIKE:
            pieces.append(character)
            continue
        previous = text[index - 1] if index > 0 else ""
        following = text[index + 1] if index + 1 < len(text) else ""
        if _detached_okina(text, index):
            pieces[-1] = OKINA  # replaces the space
            continue
        doubled = previous in APOSTROPHE_LIKE and index >= 2 and _is_letter(text[index - 2])
        if doubled and _is_letter(following):
            continue  # mo''jiza: a doubled mark between letters is one mark
        if not _is_letter(previous):
            # A quote: it opens when a letter follows, otherwise it closes whatever was open.
            quote_open = _is_letter(following)
            pieces.append(character)
            continue
        inside_word = _is_letter(following) or following in APOSTROPHE_LIKE
        if not inside_word and character not in _MODIFIER_LETTERS and quote_open:
            quote_open = False
            pieces.append(character)
            continue
        pieces.append(OKINA if previous in _OKINA_BASES else TUTUQ)
    return "".join(pieces)


def fold_apostrophes(text: str, to: str = "'") -> str:
    """Replace every apostrophe look-alike, marks included, by one character.

    This is the folding published Uzbek results use before scoring.

    Args:
        text: text whose apostrophes are to be folded.
        to: the character that replaces each look-alike.
    """
    return "".join(to if character in APOSTROPHE_LIKE else character for character in text)
