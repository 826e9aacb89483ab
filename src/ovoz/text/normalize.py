"""Composable text normalizers: named chains of plain ``str -> str`` steps.

Four ready-made normalizers, so that every reported number can say how the text was prepared
(``ovoz.text.conventions.CONVENTION_NOTES`` says which published figures each one matches):

- ``orthographic``: the raw text, untouched.
- ``normalized``: nfc > replace_legacy_letters > unify_apostrophes > to_latin > casefold >
  expand_numbers > join_counting_suffix > drop_bir_before_scale > remove_punctuation >
  collapse_whitespace.
- ``published``: the convention behind published Uzbek results: references containing digits are
  dropped (``keep_reference``), then nfc > unify_apostrophes > casefold > remove_punctuation >
  fold_apostrophes > collapse_whitespace (every apostrophe variant becomes ASCII ``'``).
- ``whisper-basic``: Whisper's ``BasicTextNormalizer`` from transformers, unchanged (lowercase, drop text
  in brackets and parentheses, every mark, symbol and punctuation character to a space: o'zbek becomes
  "o zbek"), then collapse_whitespace. transformers is imported on first use.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ovoz.errors import ConfigError, DependencyError
from ovoz.text.apostrophes import OKINA, TUTUQ, fold_apostrophes, unify_apostrophes
from ovoz.text.numbers import drop_bir_before_scale, expand_numbers, join_counting_suffix
from ovoz.text.script import replace_legacy_letters, to_latin

__all__ = [
    "NORMALIZERS",
    "STEPS",
    "WHISPER_BASIC",
    "Normalizer",
    "available_normalizers",
    "casefold",
    "collapse_whitespace",
    "get_normalizer",
    "keep_all",
    "keep_reference",
    "nfc",
    "remove_punctuation",
    "whisper_basic",
]

Step = Callable[[str], str]


def nfc(text: str) -> str:
    """Compose characters (Unicode NFC), so that o + combining mark equals the precomposed letter."""
    return unicodedata.normalize("NFC", text)


def casefold(text: str) -> str:
    """Lowercase for Uzbek: Oʻ -> oʻ, SH -> sh; the apostrophe letters have no case and survive.

    Uses ``str.lower`` (not ``str.casefold``) and maps the Turkish dotted İ to a plain i.
    """
    return text.replace("İ", "I").lower()


class _PunctuationTable(dict):
    """``str.translate`` table, filled on first sight of each character: punctuation and symbols to a space."""

    def __missing__(self, code: int) -> int:
        character = chr(code)
        keep = character in (OKINA, TUTUQ) or unicodedata.category(character)[0] not in "PS"
        self[code] = code if keep else ord(" ")
        return self[code]


_PUNCTUATION = _PunctuationTable()


def remove_punctuation(text: str) -> str:
    """Replace punctuation and symbols by spaces without splitting oʻ/gʻ words or losing the tutuq.

    Apostrophes are unified first, so o'zbek keeps its mark (as U+02BB) while quotation marks go.
    """
    return unify_apostrophes(text).translate(_PUNCTUATION)


def collapse_whitespace(text: str) -> str:
    """Turn every run of whitespace into one space and strip both ends."""
    return " ".join(text.split())


def keep_reference(text: str) -> bool:
    """Whether a reference takes part in ``published`` scoring: False when it contains a digit."""
    return not any(character.isdigit() for character in text)


def keep_all(text: str) -> bool:
    """Keep every reference (the filter of normalizers that drop nothing)."""
    return True


_WHISPER_FIX = (
    "install transformers>=5.17 (pip install 'transformers>=5.17'), which provides it and its regex dependency"
)


@functools.cache
def _whisper_normalizer() -> Step:
    try:
        from transformers.models.whisper.english_normalizer import BasicTextNormalizer
    except ImportError as error:
        raise DependencyError(
            "the whisper-basic normalizer needs transformers.models.whisper.english_normalizer.BasicTextNormalizer, "
            f"which could not be imported ({error}); {_WHISPER_FIX}"
        ) from error
    return BasicTextNormalizer()


def whisper_basic(text: str) -> str:
    """Whisper's ``BasicTextNormalizer`` (transformers), as published Whisper results apply it.

    Raises:
        DependencyError: transformers (or the normalizer in it) cannot be imported; the message says
            what to install.
    """
    return _whisper_normalizer()(text)


STEPS: Mapping[str, Step] = MappingProxyType(
    {
        "nfc": nfc,
        "replace_legacy_letters": replace_legacy_letters,
        "unify_apostrophes": unify_apostrophes,
        "to_latin": to_latin,
        "casefold": casefold,
        "expand_numbers": expand_numbers,
        "join_counting_suffix": join_counting_suffix,
        "drop_bir_before_scale": drop_bir_before_scale,
        "remove_punctuation": remove_punctuation,
        "fold_apostrophes": fold_apostrophes,
        "collapse_whitespace": collapse_whitespace,
        "whisper_basic": whisper_basic,
    }
)


@dataclass(frozen=True)
class Normalizer:
    """A named chain of text steps, plus a filter saying which references to score at all.

    Attributes:
        name: the name reports print beside each number.
        steps: (step name, function) pairs, applied in order.
        keep: predicate on the raw reference; False drops the utterance from scoring.
    """

    name: str
    steps: tuple[tuple[str, Step], ...] = ()
    keep: Callable[[str], bool] = keep_all

    @classmethod
    def from_names(cls, name: str, step_names: tuple[str, ...], keep: Callable[[str], bool] = keep_all) -> Normalizer:
        """Build a normalizer from names in ``STEPS``; raises ConfigError on an unknown name.

        Args:
            name: the normalizer's name.
            step_names: names of the steps, in the order they run.
            keep: predicate on the raw reference (see the class docstring).
        """
        unknown = [step for step in step_names if step not in STEPS]
        if unknown:
            raise ConfigError(
                f"unknown normalization step(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(STEPS)}"
            )
        return cls(name, tuple((step, STEPS[step]) for step in step_names), keep)

    @property
    def step_names(self) -> tuple[str, ...]:
        """The names of the steps, in order."""
        return tuple(step for step, _ in self.steps)

    def describe(self) -> str:
        """One line for reports, e.g. ``normalized (nfc > unify_apostrophes > ...)``."""
        chain = " > ".join(self.step_names) or "no change"
        drops = "" if self.keep is keep_all else f"; drops references where {self.keep.__name__} is False"
        return f"{self.name} ({chain}{drops})"

    def __call__(self, text: str) -> str:
        for _, step in self.steps:
            text = step(text)
        return text


ORTHOGRAPHIC = Normalizer("orthographic")
NORMALIZED = Normalizer.from_names(
    "normalized",
    (
        "nfc",
        "replace_legacy_letters",
        "unify_apostrophes",
        "to_latin",
        "casefold",
        "expand_numbers",
        "join_counting_suffix",
        "drop_bir_before_scale",
        "remove_punctuation",
        "collapse_whitespace",
    ),
)
PUBLISHED = Normalizer.from_names(
    "published",
    (
        "nfc",
        "unify_apostrophes",
        "casefold",
        "remove_punctuation",
        "fold_apostrophes",
        "collapse_whitespace",
    ),
    keep=keep_reference,
)
WHISPER_BASIC = Normalizer.from_names("whisper-basic", ("whisper_basic", "collapse_whitespace"))
NORMALIZERS: Mapping[str, Normalizer] = MappingProxyType(
    {normalizer.name: normalizer for normalizer in (ORTHOGRAPHIC, NORMALIZED, PUBLISHED, WHISPER_BASIC)}
)


def available_normalizers() -> tuple[str, ...]:
    """The names ``get_normalizer`` accepts."""
    return tuple(NORMALIZERS)


def get_normalizer(name: str | Normalizer) -> Normalizer:
    """The ready-made normalizer called ``name``; a Normalizer passes through unchanged.

    Args:
        name: one of ``available_normalizers()``.

    Raises:
        ConfigError: the name is unknown; the message lists the valid choices.
    """
    if isinstance(name, Normalizer):
        return name
    try:
        return NORMALIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown normalizer {name!r}; choose one of: {', '.join(NORMALIZERS)}") from None
