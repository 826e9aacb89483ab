"""Which published figures each scoring convention reproduces, for reports to print beside the numbers.

A WER is only comparable with another WER computed under the same text preparation. ``CONVENTION_NOTES``
says, per normalizer name of ``ovoz.text.available_normalizers()``, which published figures it matches and
what it does that others do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CONVENTION_NOTES", "ConventionNote"]


@dataclass(frozen=True)
class ConventionNote:
    """What one scoring convention is for.

    Attributes:
        name: the normalizer's name.
        matches: the published figures computed the same way (those it is fair to put beside).
        differs: what it does that the other conventions do not, in one sentence.
    """

    name: str
    matches: str
    differs: str

    def describe(self) -> str:
        """One line for reports: ``name: matches ...; differs``."""
        return f"{self.name}: matches {self.matches}. {self.differs}"


CONVENTION_NOTES: Mapping[str, ConventionNote] = MappingProxyType(
    {
        note.name: note
        for note in (
            ConventionNote(
                "orthographic",
                "figures scored on raw, cased and punctuated output (models that write punctuation and "
                "capitals, scored without any normalization)",
                "Case, punctuation, apostrophe look-alikes and digits all count as errors.",
            ),
            ConventionNote(
                "normalized",
                "no published figure: it is ovoz's own convention, for comparing models scored by ovoz",
                "Cyrillic and Latin, every apostrophe variant, digits and spelled-out numbers (25 ta = "
                "yigirma beshta, bir yuz = yuz) and the older substitute letters (õ ğ ş) all score equal.",
            ),
            ConventionNote(
                "published",
                "Uzbek Common Voice, FLEURS and USC figures of papers and model cards that drop references "
                "containing digits and fold apostrophe variants before scoring lowercase text without "
                "punctuation",
                "Utterances whose reference has a digit are not scored at all; no transliteration.",
            ),
            ConventionNote(
                "whisper-basic",
                "figures computed with Whisper's BasicTextNormalizer (transformers' Whisper english_normalizer), "
                "as Whisper fine-tuning scripts and model cards that report a 'normalized WER' use it",
                "Every mark, symbol and punctuation character becomes a space, so o'zbek (ASCII apostrophe) "
                "scores as two words o zbek while oʻzbek (U+02BB) stays one; digits are kept as digits and "
                "text in brackets or parentheses is dropped.",
            ),
        )
    }
)
