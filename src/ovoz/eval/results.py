"""What an evaluation produces: the models evaluated, their hypotheses and scores (pure data, no I/O)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..types import TranscribeOptions

if TYPE_CHECKING:
    from ..data import Utterance
    from .metrics import ErrorCounts, ScoreReport

BASE_NAME = "base"
"""The name of the base model evaluated alone (also accepted as an adapter spec meaning "no adapter")."""

@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate: the base alone (``adapter=None``) or the base plus one adapter."""

    name: str
    """The label in the report (a file-name-safe slug)."""
    adapter: str | None = None
    """A hub id or local folder of a LoRA adapter; None evaluates the base alone."""

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """``base``, ``ADAPTER`` or ``NAME=ADAPTER`` (NAME made of letters, digits, ``.``, ``_``, ``-``)."""
        text = text.strip()
        name, sep, rest = text.partition("=")
        if sep and rest and _slug(name) == name:
            return cls(name, None if rest == BASE_NAME else rest)
        if text == BASE_NAME:
            return cls(BASE_NAME, None)
        return cls(_slug(Path(text.rstrip("/")).name) or "adapter", text)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text).strip("._")


def unique_names(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The specs with repeated names made unique by a ``-2``, ``-3`` suffix."""
    seen: dict[str, int] = {}
    result = []
    for spec in specs:
        n = seen[spec.name] = seen.get(spec.name, 0) + 1
        result.append(spec if n == 1 else dataclasses.replace(spec, name=f"{spec.name}-{n}"))
    return result


@dataclass(frozen=True)
class Hypothesis:
    """A model's output for one utterance, as cached."""

    id: str
    text: str
    duration_s: float
    """Measured from the decoded audio."""
    avg_logprob: float | None = None
    n_tokens: int = 0
    truncated: bool = False
    """The token cap was hit or the repetition guard cut the text."""
    compute_s: float = 0.0
    """This utterance's share of its batch's wall time."""
    error: str | None = None
    """Why no hypothesis was produced (it is scored as empty)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)




# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class BucketScore:
    """Summed error counts of the utterances whose duration falls in [low_s, high_s)."""

    low_s: float
    high_s: float
    n_utterances: int
    counts: ErrorCounts

    @property
    def label(self) -> str:
        return f"{self.low_s:g}-{self.high_s:g} s" if math.isfinite(self.high_s) else f">= {self.low_s:g} s"


@dataclass(frozen=True)
class NormalizerScore:
    """One model's scores under one normalization."""

    name: str
    report: ScoreReport
    """Per-utterance and corpus counts, dropped positions and top confusions (from ovoz.metrics)."""
    buckets: tuple[BucketScore, ...]

    @property
    def description(self) -> str:
        return self.report.normalizer


@dataclass
class ModelResult:
    """What one model produced on the corpus and how it scored."""

    spec: ModelSpec
    info: dict[str, Any]
    options_key: str
    hypotheses: list[Hypothesis]
    """In corpus order."""
    scores: dict[str, NormalizerScore]

    @property
    def failed(self) -> list[Hypothesis]:
        return [h for h in self.hypotheses if h.error is not None]

    @property
    def audio_s(self) -> float:
        return sum(h.duration_s for h in self.hypotheses)

    @property
    def compute_s(self) -> float:
        return sum(h.compute_s for h in self.hypotheses)

    @property
    def rtfx(self) -> float | None:
        """Seconds of audio per second of compute (over the hypotheses' recorded compute times)."""
        return self.audio_s / self.compute_s if self.compute_s > 0 else None


@dataclass
class EvalResult:
    """Everything a report shows."""

    dataset: dict[str, Any]
    utterances: list[Utterance]
    options: TranscribeOptions
    normalizers: tuple[str, ...]
    primary: str
    models: list[ModelResult] = field(default_factory=list)
    report_dir: Path | None = None

