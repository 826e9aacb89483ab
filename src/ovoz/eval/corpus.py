"""Reading an evaluation corpus: utterances with transcripts and unique ids, and what was read."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..data import Utterance

logger = logging.getLogger(__name__)


def read_corpus(
    spec: str | Path,
    split: str = "test",
    *,
    text_column: str | None = None,
    limit: int | None = None,
    format: str | None = None,
    on_error: str = "skip",
) -> tuple[list[Utterance], dict[str, Any]]:
    """All utterances of a corpus with a transcript, and a description of what was read.

    Repeated ids get a ``#2``, ``#3`` suffix (the cache is keyed by id).

    Args:
        spec: a JSONL manifest, Common Voice / FLEURS folder or TSV, or a local Hugging Face dataset.
        split: the split to read where the layout has several.
        text_column: the transcript field; None uses the format's default.
        limit: read at most this many utterances.
        format: skip layout detection (jsonl, common_voice, fleurs, hf).
        on_error: "skip" bad rows (listed in the description) or "raise" at the first.
    """
    from ..data import ReadReport, detect_format, open_dataset

    report = ReadReport()
    found_format = format or detect_format(Path(spec).expanduser(), split)[0]
    utterances = list(open_dataset(spec, split, text_column, limit, format=format, on_error=on_error, report=report))
    seen: dict[str, int] = {}
    for index, utterance in enumerate(utterances):
        n = seen[utterance.id] = seen.get(utterance.id, 0) + 1
        if n > 1:
            logger.warning(
                "utterance id %s appears more than once; the copy at position %d is %s#%d",
                utterance.id,
                index,
                utterance.id,
                n,
            )
            utterances[index] = dataclasses.replace(utterance, id=f"{utterance.id}#{n}")
    if not utterances:
        raise ConfigError(f"{spec}: no utterance with a transcript was read (split {split}); check the path and split.")
    info = {
        "spec": str(spec),
        "format": found_format,
        "split": split,
        "limit": limit,
        "n_rows": report.n_rows,
        "n_utterances": len(utterances),
        "n_skipped_rows": report.n_skipped,
        "skipped_rows": [dataclasses.asdict(error) for error in report.skipped[:100]],
    }
    return utterances, info


# ---------------------------------------------------------------- decoding


def estimated_duration(utterance: Utterance) -> float:
    """The utterance's duration from its manifest, array or file header (0 when none says)."""
    if utterance.duration_s is not None:
        return utterance.duration_s
    from ..audio import probe_duration

    source = utterance.audio_source
    if isinstance(source, tuple):
        return len(source[0]) / source[1]
    return probe_duration(source) or 0.0

