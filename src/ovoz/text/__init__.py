"""Uzbek text: apostrophes, Cyrillic <-> Latin, numbers to words, and named normalizers for scoring."""

from ovoz.text.apostrophes import OKINA, TUTUQ, fold_apostrophes, unify_apostrophes
from ovoz.text.normalize import (
    NORMALIZED,
    NORMALIZERS,
    ORTHOGRAPHIC,
    PUBLISHED,
    STEPS,
    Normalizer,
    available_normalizers,
    casefold,
    collapse_whitespace,
    get_normalizer,
    keep_all,
    keep_reference,
    nfc,
    remove_punctuation,
)
from ovoz.text.numbers import (
    cardinal,
    decimal,
    drop_bir_before_scale,
    expand_numbers,
    join_counting_suffix,
    ordinal,
)
from ovoz.text.script import replace_legacy_letters, to_cyrillic, to_latin

__all__ = [
    "NORMALIZED",
    "NORMALIZERS",
    "OKINA",
    "ORTHOGRAPHIC",
    "PUBLISHED",
    "STEPS",
    "TUTUQ",
    "Normalizer",
    "available_normalizers",
    "cardinal",
    "casefold",
    "collapse_whitespace",
    "decimal",
    "drop_bir_before_scale",
    "expand_numbers",
    "fold_apostrophes",
    "get_normalizer",
    "join_counting_suffix",
    "keep_all",
    "keep_reference",
    "nfc",
    "ordinal",
    "remove_punctuation",
    "replace_legacy_letters",
    "to_cyrillic",
    "to_latin",
    "unify_apostrophes",
]
