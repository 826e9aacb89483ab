"""The data model every reader yields: `Utterance`, in-memory `AudioArray`, and the row-error report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from ..errors import ConfigError, ManifestRowError

if TYPE_CHECKING:  # numpy is imported lazily so that `import ovoz.data` stays light
    import numpy as np

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
ON_ERROR_CHOICES = ("raise", "skip")


@dataclass(frozen=True, eq=False)
class AudioArray:
    """Decoded audio held in memory: mono float32 samples at `sample_rate` Hz."""

    samples: "np.ndarray"
    """1-D float32 samples (converted on construction; a copy only when the dtype differs)."""
    sample_rate: int
    """Samples per second of `samples`."""

    def __post_init__(self) -> None:
        import numpy as np

        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ConfigError(f"AudioArray samples have shape {samples.shape}: give a 1-D (mono) array.")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ConfigError(f"AudioArray sample_rate={self.sample_rate!r}: give a positive integer (Hz).")
        object.__setattr__(self, "samples", samples)

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def as_tuple(self) -> tuple["np.ndarray", int]:
        """`(samples, sample_rate)`, the in-memory form `ovoz.audio.load_audio` accepts."""
        return self.samples, self.sample_rate

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AudioArray):
            return NotImplemented
        import numpy as np

        return self.sample_rate == other.sample_rate and np.array_equal(self.samples, other.samples)

    __hash__ = None  # type: ignore[assignment]  # arrays are mutable

    def __repr__(self) -> str:
        return f"AudioArray(n_samples={len(self.samples)}, sample_rate={self.sample_rate})"


AudioRef = Union[str, Path, bytes, AudioArray]


@dataclass(frozen=True)
class Utterance:
    """One audio clip with its reference transcript, as every reader yields it."""

    id: str
    """Identifier, unique within a corpus (a clip's file stem when the source has no id)."""
    audio: AudioRef
    """A path to an audio file, the encoded file's bytes, or decoded samples."""
    text: str | None = None
    """Reference transcript, stripped; None for audio without a transcript."""
    duration_s: float | None = None
    """Duration in seconds when the source states it (not measured: readers never decode)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Everything else the source row holds (speaker, gender, votes, ...)."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"Utterance id={self.id!r}: give a non-empty string.")
        if isinstance(self.audio, bytearray):
            object.__setattr__(self, "audio", bytes(self.audio))
        if not isinstance(self.audio, (str, Path, bytes, AudioArray)):
            raise ConfigError(
                f"Utterance {self.id!r}: audio of type {type(self.audio).__name__}; "
                "give a path, bytes or an AudioArray(samples, sample_rate)."
            )

    @property
    def audio_source(self) -> str | Path | bytes | tuple["np.ndarray", int]:
        """`audio` in the form `ovoz.audio.load_audio` takes: a path, bytes or `(samples, sample_rate)`."""
        return self.audio.as_tuple() if isinstance(self.audio, AudioArray) else self.audio


@dataclass(frozen=True)
class RowError:
    """Why one source row was not turned into an `Utterance`."""

    source: str
    """The file the row came from."""
    row: int
    """1-based line number in a JSONL/TSV file (a TSV header is line 1); 0-based row index in a dataset."""
    id: str | None
    """The row's id when it could be read."""
    reason: str


@dataclass
class ReadReport:
    """Collects what a reader did: rows seen, utterances yielded, and every skipped row.

    Pass one to a reader (``report=``) and inspect it after iterating. `on_skip`, when given, is
    called with each `RowError` as it happens (e.g. to write a rejects file).
    """

    on_skip: Callable[[RowError], None] | None = None
    n_rows: int = 0
    """Source rows examined (header lines not counted)."""
    n_yielded: int = 0
    skipped: list[RowError] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


class RowPolicy:
    """Applies an `on_error` policy for one reader run: count rows, reject bad ones, log each."""

    def __init__(self, source: str | Path, on_error: str, report: ReadReport | None) -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ConfigError(f"on_error={on_error!r}: choose one of {', '.join(ON_ERROR_CHOICES)}.")
        self.source = str(source)
        self.on_error = on_error
        self.report = report if report is not None else ReadReport()

    def seen(self) -> None:
        self.report.n_rows += 1

    def accept(self, utterance: Utterance) -> Utterance:
        self.report.n_yielded += 1
        return utterance

    def reject(self, row: int, id: str | None, reason: str) -> None:
        """Record a bad row; raise `ManifestRowError` under on_error='raise', else log and carry on."""
        error = RowError(self.source, row, id, reason)
        self.report.skipped.append(error)
        if self.report.on_skip is not None:
            self.report.on_skip(error)
        if self.on_error == "raise":
            raise ManifestRowError(self.source, row, id, reason)
        logger.warning("%s: row %d (id=%s) skipped: %s", self.source, row, id, reason)


def check_text(value: object, *, require_text: bool) -> tuple[str | None, str | None]:
    """Return `(text, None)` for a usable transcript or `(None, reason)` for a bad one."""
    if value is None:
        return (None, "missing transcript") if require_text else (None, None)
    if not isinstance(value, str):
        return None, f"transcript is {type(value).__name__}, not a string"
    text = value.strip()
    if not text and require_text:
        return None, "empty transcript"
    return text or None, None


def check_duration(value: object) -> tuple[float | None, str | None]:
    """Return `(seconds, None)` for a usable duration (None allowed) or `(None, reason)`."""
    if value is None or value == "":
        return None, None
    if isinstance(value, bool):
        return None, f"duration {value!r} is not a number"
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"duration {value!r} is not a number"
    if not seconds >= 0.0 or seconds == float("inf"):
        return None, f"duration {value!r} is not a finite, non-negative number of seconds"
    return seconds, None


def check_file(path: Path) -> str | None:
    """Reason a referenced audio file is unusable, or None (a cheap `stat`, no decoding)."""
    if not path.exists():
        return f"audio file not found: {path} (check the path; relative paths start at the manifest's folder)"
    if path.is_dir():
        return f"audio path is a folder: {path} (give an audio file)"
    if not path.is_file():  # never opened: reading a FIFO blocks until a writer comes
        return f"audio path is not a regular file (a FIFO, socket or device): {path} (save the audio to a file)"
    return None
