"""`open_dataset`: one entry point that recognizes a corpus' layout from its path and streams it."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ManifestError
from .commonvoice import read_common_voice
from .fleurs import COLUMNS as FLEURS_COLUMNS
from .fleurs import read_fleurs
from .hf import read_hf_dataset
from .jsonl import read_jsonl_manifest
from .model import ReadReport, Utterance

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "common_voice", "fleurs", "hf")
ACCEPTED_LAYOUTS = (
    "a JSONL manifest (.jsonl or .json, one object per line), or a folder holding <split>.jsonl or manifest.jsonl",
    "Common Voice: <root>/<lang>/<split>.tsv beside <root>/<lang>/clips/, the <lang> folder, or the TSV file",
    "FLEURS: <root>/<lang>/<split>.tsv (no header) beside <root>/<lang>/audio/<split>/, the <lang> folder, "
    "or the TSV file",
    "Hugging Face: a save_to_disk folder (state.json or dataset_dict.json), a .parquet/.arrow file, "
    "or a folder of .parquet files",
)


def open_dataset(
    spec: str | Path,
    split: str = "test",
    text_column: str | None = None,
    limit: int | None = None,
    *,
    format: str | None = None,
    require_text: bool = True,
    on_error: str = "raise",
    report: ReadReport | None = None,
) -> Iterator[Utterance]:
    """Recognize the corpus at `spec` and stream its utterances; layout errors are raised at once.

    spec: a manifest file, a corpus folder, or a dataset folder/file (see `ACCEPTED_LAYOUTS`).
    split: the split to read where the layout has several (test, dev, train, validation, ...).
    text_column: the transcript field/column; None uses each format's default.
    limit: stop after this many utterances (None reads all).
    format: one of jsonl, common_voice, fleurs, hf to skip detection.
    require_text, on_error, report: as for `read_jsonl_manifest`.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"limit={limit!r}: give a non-negative integer or None.")
    if format is not None and format not in FORMATS:
        raise ConfigError(f"format={format!r}: choose one of {', '.join(FORMATS)} or None to detect it.")
    path = Path(spec).expanduser()
    if format is None:
        format, path = detect_format(path, split)
    logger.info("reading %s as %s (split %s)", path, format, split)
    options: dict[str, Any] = {"require_text": require_text, "on_error": on_error, "report": report}
    if text_column is not None:
        options["text_column"] = text_column
    if format == "jsonl":
        utterances = read_jsonl_manifest(path, **options)
    elif format == "common_voice":
        utterances = read_common_voice(path, split=split, **options)
    elif format == "fleurs":
        utterances = read_fleurs(path, split=split, **options)
    else:
        utterances = read_hf_dataset(path, split=split, **options)
    return utterances if limit is None else _take(utterances, limit)


def _take(utterances: Iterator[Utterance], limit: int) -> Iterator[Utterance]:
    try:
        yield from itertools.islice(utterances, limit)
    finally:
        utterances.close()  # type: ignore[attr-defined]  # readers are generators: close their files now


def detect_format(path: Path, split: str = "test") -> tuple[str, Path]:
    """The format name (one of `FORMATS`) of the corpus at `path`, and the path its reader takes."""
    if path.is_file():
        found = _file_format(path)
    elif path.is_dir():
        found = _folder_format(path, split)
    else:
        raise ManifestError(f"{path}: no such file or folder. {_accepted()}")
    if found is None:
        raise ManifestError(f"{path}: not a corpus layout ovoz recognizes. {_accepted()}")
    return found


def _accepted() -> str:
    return "Accepted: " + "; ".join(f"({i}) {text}" for i, text in enumerate(ACCEPTED_LAYOUTS, start=1)) + "."


def _file_format(path: Path) -> tuple[str, Path] | None:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl", path
    if suffix in (".parquet", ".arrow"):
        return "hf", path
    if suffix == ".tsv":
        with path.open("r", encoding="utf-8-sig", errors="replace") as f:
            first = f.readline().rstrip("\r\n").split("\t")
        if "path" in first and "sentence" in first:
            return "common_voice", path
        if len(first) == len(FLEURS_COLUMNS):
            return "fleurs", path
    return None


def _folder_format(path: Path, split: str) -> tuple[str, Path] | None:
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return "hf", path
    lang_dirs = [path, *_subfolders(path), *_subfolders(path / "data")]
    for folder in lang_dirs:
        if (folder / f"{split}.tsv").is_file():
            if (folder / "clips").is_dir():
                return "common_voice", path
            if (folder / "audio").is_dir():
                return "fleurs", path
    for name in (f"{split}.jsonl", "manifest.jsonl", f"{split}.json"):
        if (path / name).is_file():
            return "jsonl", path / name
    # Parquet at the hub's depths only (file, data/file, split/file): never walk a folder of clips.
    if any(itertools.chain(path.glob("*.parquet"), path.glob("*/*.parquet"), path.glob("*/*/*.parquet"))):
        return "hf", path
    return None


def _subfolders(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir()) if path.is_dir() else []
