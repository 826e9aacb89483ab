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

from .audio import check_audio_file, is_audio_path
from .errors import AudioError, ConfigError, OutputWriteError, named

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only when the block succeeds.

    After Ctrl-C or a crash ``path`` is either absent or complete; never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name adds 15 bytes (".", ".", 8 random, ".part"): cut the name so it fits NAME_MAX (255).
    prefix = "." + cap_bytes(path.name, NAME_MAX - 15) + "."
    descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=path.parent)
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


def check_output_dir(path: str | Path, option: str = "output_dir") -> Path:
    """Create ``path`` when missing and prove it writable with a temporary file, before any work is done.

    Raises :class:`OutputWriteError` naming the option (``--output-dir`` from the command line, ``output_dir=``
    from Python) and the folder when it is a file, cannot be created, or cannot be written (read-only file
    system, permissions, disk full).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputWriteError(f"{named(option, path)}: is a file, not a folder; give a folder (it is created when "
                               "missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise OutputWriteError(
            f"{named(option, path)}: cannot write there ({error.strerror or error}); give a writable folder."
        ) from error
    return path


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
    id: str | None = None
    """A manifest row's own id (before :func:`safe_stem`), to tell rows with the same audio apart."""


MANIFEST_SUFFIXES = (".jsonl",)
"""Inputs with these suffixes are JSONL manifests: one utterance (``id``, ``audio``) per line."""

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\-]+")
NAME_MAX = 255
"""The longest file name, in bytes, on Linux, macOS and Windows file systems."""
MAX_STEM_BYTES = 200
"""Output names are cut to this many UTF-8 bytes, leaving room for ``.json`` and a de-duplicating suffix."""


def cap_bytes(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8, at a character boundary."""
    encoded = name.encode("utf-8")
    return name if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def safe_stem(name: str) -> str:
    """``name`` as one portable file name: runs of characters other than letters, digits, ``_ . -`` become
    ``_`` (path separators included), leading dots are dropped, and the result is at most
    :data:`MAX_STEM_BYTES` bytes of UTF-8 (file systems count bytes: 100 Cyrillic letters are 200)."""
    cleaned = _UNSAFE_NAME_CHARS.sub("_", unicodedata.normalize("NFC", name)).lstrip(".")
    return cap_bytes(cleaned, MAX_STEM_BYTES).strip() or "_"


def expand_inputs(inputs: list[str]) -> list[InputItem]:
    """Files as given, folders searched recursively for audio/video files (sorted), JSONL manifests row by row.

    Output stems keep the path below each folder, so ``a/x.wav`` and ``b/x.wav`` do not collide; a manifest
    row's stem is its utterance id made filesystem-safe (see :func:`safe_stem`). Inputs known to be unusable
    before any decoding (a missing file, a FIFO, a manifest row whose audio file is missing, bad JSON) come
    back as items with ``error`` set, so that the run reports them without loading a model for them. The same
    input listed twice is kept once; two inputs that would write the same output name both get one: the later
    gets ``_2`` (``_3``, ...) added, with a warning.
    """
    if not inputs:
        raise ConfigError("no inputs given: name audio/video files, folders or .jsonl manifests.")
    items: list[InputItem] = []
    for raw in inputs:
        if not str(raw).strip():
            raise ConfigError("an input is an empty string: name an audio/video file, folder or .jsonl manifest.")
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_path(p))
            if not found:
                raise ConfigError(f"{path}: the folder holds no audio or video files.")
            items.extend(InputItem(p, _capped(p.relative_to(path).with_suffix(""))) for p in found)
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            items.extend(_manifest_items(path))
        else:
            items.append(InputItem(path, _capped(Path(path.stem)), _precheck(path)))
    return _distinct(items)


def _capped(stem: Path) -> Path:
    return stem.parent / (cap_bytes(stem.name, MAX_STEM_BYTES).strip() or "_")


def _precheck(path: Path) -> str | None:
    """Why ``path`` cannot be decoded, from its metadata alone (nothing is opened), or None."""
    try:
        check_audio_file(path)
    except AudioError as error:
        return str(error)
    return None


def _distinct(items: list[InputItem]) -> list[InputItem]:
    unique: list[InputItem] = []
    taken: dict[Path, InputItem] = {}
    for item in items:
        if item.error is not None:  # writes nothing, so it takes no name
            unique.append(item)
            continue
        first = taken.get(item.stem)
        if first is not None and (first.source, first.id) == (item.source, item.id):
            logger.info("%s is listed twice; transcribing it once", item.source)
            continue
        if first is not None:
            number = 2
            while (renamed := item.stem.with_name(f"{item.stem.name}_{number}")) in taken:
                number += 1
            logger.warning("%s%s and %s%s would both write the output name %s; the later is written as %s",
                           first.source, _of(first), item.source, _of(item), item.stem, renamed)
            item = InputItem(item.source, renamed, None, item.id)
        taken[item.stem] = item
        unique.append(item)
    return unique


def _of(item: InputItem) -> str:
    return f" (id {item.id!r})" if item.id is not None else ""


def _manifest_items(path: Path) -> list[InputItem]:
    """One item per row of the JSONL manifest ``path``; unusable rows become items with ``error`` set."""
    from .data import ReadReport, read_jsonl_manifest

    if not path.is_file():
        return [InputItem(path, Path(safe_stem(path.stem)), f"{path}: no such manifest file. Check the path.")]
    report = ReadReport()
    rows = list(read_jsonl_manifest(path, require_text=False, on_error="skip", report=report))
    items = [InputItem(Path(row.audio), Path(safe_stem(row.id)), _precheck(Path(row.audio)), row.id) for row in rows]
    for bad in report.skipped:  # named by the manifest; they write nothing, so their stems never collide
        name = bad.id if bad.id is not None else f"row{bad.row}"
        items.append(InputItem(path, Path(safe_stem(name)), f"row {bad.row} (id={bad.id}): {bad.reason}"))
    if not items:
        raise ConfigError(f"{path}: the manifest holds no rows; write one JSON object per line with an audio path.")
    logger.info("%s: %d rows, %d unusable", path, report.n_rows, report.n_skipped)
    return items
