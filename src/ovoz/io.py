"""Filesystem helpers: atomic writes and input discovery."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .audio import is_audio_path
from .errors import ConfigError

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only when the block succeeds.

    After Ctrl-C or a crash ``path`` is either absent or complete; never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, mode, encoding=encoding if "b" not in mode else None, newline="" if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class InputItem:
    """One input to transcribe and the name its outputs get (relative, without suffix).

    ``error`` is set for an input known to be unusable before any decoding (a manifest row whose audio
    file is missing, say): the run records it as a failure instead of transcribing it.
    """

    source: Path
    stem: Path
    error: str | None = None


MANIFEST_SUFFIXES = (".jsonl",)
"""Inputs with these suffixes are JSONL manifests: one utterance (``id``, ``audio``) per line."""

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\-]+")


def safe_stem(name: str) -> str:
    """``name`` as one portable file name: runs of characters other than letters, digits, ``_ . -`` become
    ``_`` (path separators included), leading dots are dropped, and the result is at most 200 characters."""
    cleaned = _UNSAFE_NAME_CHARS.sub("_", unicodedata.normalize("NFC", name)).lstrip(".")
    cleaned = cleaned[:200].strip() or "_"
    return cleaned


def expand_inputs(inputs: list[str]) -> list[InputItem]:
    """Files as given, folders searched recursively for audio/video files (sorted), JSONL manifests row by row.

    Output stems keep the path below each folder, so ``a/x.wav`` and ``b/x.wav`` do not collide; a manifest
    row's stem is its utterance id made filesystem-safe (see :func:`safe_stem`). Manifest rows that cannot be
    used (missing audio file, bad JSON) come back as items with ``error`` set, so that the run reports them.
    The same input listed twice is kept once; two inputs that would write the same output name raise
    :class:`ConfigError`.
    """
    items: list[InputItem] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_path(p))
            if not found:
                raise ConfigError(f"{path}: the folder holds no audio or video files.")
            items.extend(InputItem(p, p.relative_to(path).with_suffix("")) for p in found)
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            items.extend(_manifest_items(path))
        else:
            items.append(InputItem(path, Path(path.stem)))
    unique: list[InputItem] = []
    seen: dict[Path, InputItem] = {}
    for item in items:
        first = seen.get(item.stem)
        if item.error is not None:
            unique.append(item)
        elif first is None:
            seen[item.stem] = item
            unique.append(item)
        elif first.source != item.source:
            raise ConfigError(
                f"{item.source} and {first.source} would write the same output name {item.stem}; "
                "rename one (or give manifest rows distinct ids) or transcribe them in separate runs."
            )
    return unique


def _manifest_items(path: Path) -> list[InputItem]:
    """One item per row of the JSONL manifest ``path``; unusable rows become items with ``error`` set."""
    from .data import ReadReport, read_jsonl_manifest

    if not path.is_file():
        return [InputItem(path, Path(safe_stem(path.stem)), f"{path}: no such manifest file. Check the path.")]
    report = ReadReport()
    rows = list(read_jsonl_manifest(path, require_text=False, on_error="skip", report=report))
    items = [InputItem(Path(row.audio), Path(safe_stem(row.id))) for row in rows]
    for bad in report.skipped:  # named by the manifest; they write nothing, so their stems never collide
        name = bad.id if bad.id is not None else f"row{bad.row}"
        items.append(InputItem(path, Path(safe_stem(name)), f"row {bad.row} (id={bad.id}): {bad.reason}"))
    if not items:
        raise ConfigError(f"{path}: the manifest holds no rows; write one JSON object per line with an audio path.")
    logger.info("%s: %d rows, %d unusable", path, report.n_rows, report.n_skipped)
    return items
