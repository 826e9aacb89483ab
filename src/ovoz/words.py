"""When two words are "the same word": one definition for the overlap merge, the repetition guard and scoring aids."""

from __future__ import annotations

import unicodedata

from .text.apostrophes import APOSTROPHE_LIKE


def word_key(word: str) -> str:
    """Case-, apostrophe- and punctuation-insensitive form of a word, for comparison only.

    NFC, casefolded, every apostrophe look-alike (``'``, ``ʻ``, ``ʼ``, ``‘``, ``’`` ...) and every punctuation or
    symbol character removed: ``"Oʻzbek,"`` and ``"o'zbek"`` have the same key. A word made only of such characters
    keeps its casefolded form, so ``"..."`` still equals ``"..."``."""
    folded = unicodedata.normalize("NFC", word).casefold()
    key = "".join(ch for ch in folded
                  if ch not in APOSTROPHE_LIKE and not unicodedata.category(ch).startswith(("P", "S")))
    return key or folded
