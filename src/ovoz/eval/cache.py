"""The hypothesis cache: a JSONL file in the report folder, appended and flushed per batch, so a run resumes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..types import TranscribeOptions
from .results import Hypothesis

logger = logging.getLogger(__name__)

CACHE_FILE = "hypotheses.jsonl"
# Options that cannot change a greedy hypothesis, left out of the cache key so a re-run may change them.
_OPTIONS_NOT_IN_KEY = ("batch_size",)


class HypothesisCache:
    """Hypotheses per (model key, options key, utterance id) in a JSONL file, appended and flushed per batch.

    A line cut short by an interruption is ignored when read; the last record of a key wins.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._records: dict[tuple[str, str], dict[str, Hypothesis]] | None = None

    def _read(self) -> dict[tuple[str, str], dict[str, Hypothesis]]:
        if self._records is None:
            self._records = {}
            if self.path.exists():
                fields = {f.name for f in dataclasses.fields(Hypothesis)}
                with self.path.open("r", encoding="utf-8") as lines:
                    for line_no, line in enumerate(lines, start=1):
                        try:
                            record = json.loads(line)
                            key = (record.pop("model_key"), record.pop("options_key"))
                            hypothesis = Hypothesis(**{k: v for k, v in record.items() if k in fields})
                        except (ValueError, KeyError, TypeError):
                            logger.warning(
                                "%s: line %d is unreadable (interrupted write?); ignored", self.path, line_no
                            )
                            continue
                        self._records.setdefault(key, {})[hypothesis.id] = hypothesis
        return self._records

    def get(self, model_key: str, options_key: str) -> dict[str, Hypothesis]:
        """The cached hypotheses of one model under one set of decoding options, by utterance id."""
        return dict(self._read().get((model_key, options_key), {}))

    def append(self, model_key: str, options_key: str, hypotheses: Sequence[Hypothesis]) -> None:
        """Append hypotheses and flush them to disk before returning."""
        if not hypotheses:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut_short = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                cut_short = existing.read(1) != b"\n"
        with self.path.open("a", encoding="utf-8") as handle:
            if cut_short:  # an interrupted write left half a line: end it so the next record stands alone
                handle.write("\n")
            for hypothesis in hypotheses:
                record = {"model_key": model_key, "options_key": options_key, **hypothesis.to_dict()}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        bucket = self._read().setdefault((model_key, options_key), {})
        bucket.update((h.id, h) for h in hypotheses)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def options_key(options: TranscribeOptions) -> str:
    """A short hash of the decoding options that can change a hypothesis."""
    return _digest({k: v for k, v in options.to_dict().items() if k not in _OPTIONS_NOT_IN_KEY})


def model_key(info: Any) -> str:
    """A short hash naming a loaded model: base, adapter, dtype and quantization (not the device)."""
    return _digest({"base": info.base, "adapter": info.adapter, "dtype": info.dtype, "quantization": info.quantization})

