"""Local Hugging Face datasets read with pyarrow, batch by batch: `save_to_disk` folders (Dataset or
DatasetDict) and parquet files. Audio is taken raw from the Audio column (encoded bytes, a file path, or a
decoded array), never decoded here: `datasets`' own decoding needs torchcodec."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from ..errors import ConfigError, DependencyError, ManifestError
from .model import AudioArray, ReadReport, RowPolicy, Utterance, check_duration, check_file, check_text

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "sentence", "transcription", "raw_transcription", "transcript")
"""Transcript columns tried in order when `text_column` is not given."""
DURATION_COLUMNS = ("duration", "duration_s")
BATCH_ROWS = 64
"""Rows per Arrow batch: audio bytes make rows large, so batches stay small to bound memory."""


def read_hf_dataset(
    path: str | Path,
    *,
    split: str = "test",
    text_column: str | None = None,
    audio_column: str | None = None,
    require_text: bool = True,
    on_error: str = "raise",
    report: ReadReport | None = None,
) -> Iterator[Utterance]:
    """Yield one `Utterance` per row of a local Hugging Face dataset, streaming Arrow batches.

    `audio` is the encoded file's bytes when the Audio column holds them, a checked path when it holds only
    a path, or an `AudioArray` when it holds a decoded `{"array", "sampling_rate"}`. The id is an `id` column,
    else the audio's file stem, else the row index. Other scalar columns go to `meta`.

    path: a `Dataset.save_to_disk` folder, a `DatasetDict.save_to_disk` folder, a parquet file, or a folder
        of parquet files (hub layout `data/<split>-*.parquet` or `<split>/*.parquet`).
    split: the split of a DatasetDict or a parquet folder; ignored for a single Dataset or file.
    text_column: the transcript column; None tries text, sentence, transcription, raw_transcription,
        transcript.
    audio_column: the Audio column; None takes `audio`, else the first column shaped like audio.
    require_text, on_error, report: as for `read_jsonl_manifest`; rows are 0-based dataset indices.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise DependencyError("reading Hugging Face datasets needs pyarrow: pip install 'ovoz[data]'") from err
    path = Path(path)
    files = _data_files(path, split)
    schema = _schema(files[0])
    audio_col = _audio_column(schema, audio_column, files[0])
    text_col = _text_column(schema, text_column, require_text, files[0])
    policy = RowPolicy(path, on_error, report)
    base = Path(os.path.abspath(path if path.is_dir() else path.parent))
    return _read_rows(files, audio_col, text_col, require_text, base, policy)


def _data_files(path: Path, split: str) -> list[Path]:
    if path.is_file():
        if path.suffix in (".parquet", ".arrow"):
            return [path]
        raise ManifestError(f"{path}: not a .parquet or .arrow file.")
    if not path.is_dir():
        raise ManifestError(f"{path}: no such file or folder.")
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        if split not in splits:
            listed = ", ".join(splits)
            raise ManifestError(f"{path}: DatasetDict has no split {split!r} (splits: {listed}); pass split=.")
        return _data_files(path / split, split)
    if (path / "state.json").is_file():
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        files = [path / entry["filename"] for entry in state.get("_data_files", [])]
        if not files or not all(f.is_file() for f in files):
            raise ManifestError(f"{path}: state.json lists missing data files; save the dataset again.")
        return files
    parquet = sorted(path.rglob("*.parquet"))
    if not parquet:
        raise ManifestError(f"{path}: no dataset_dict.json, state.json or *.parquet files.")
    by_split = {f: _split_of(f, path) for f in parquet}
    if all(s is None for s in by_split.values()):
        return parquet
    chosen = [f for f, s in by_split.items() if s == split]
    if not chosen:
        found = sorted({s for s in by_split.values() if s})
        raise ManifestError(f"{path}: no parquet files for split {split!r} (splits: {', '.join(found)}); pass split=.")
    return chosen


def _split_of(file: Path, root: Path) -> str | None:
    """A parquet file's split from its name (`test-00000-of-00001.parquet`) or folder (`test/...`)."""
    for part in file.relative_to(root).parent.parts:
        if part in ("train", "test", "validation", "dev", "valid"):
            return part
    stem = file.name.split(".")[0]
    head = stem.split("-")[0]
    return head if head != stem or stem in ("train", "test", "validation", "dev", "valid") else None


def _schema(file: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if file.suffix == ".parquet":
            return pq.read_schema(file)
        with pa.memory_map(str(file)) as source:
            return pa.ipc.open_stream(source).schema
    except (pa.ArrowException, OSError) as err:
        raise ManifestError(f"{file}: not a readable Arrow/parquet file ({err}).") from err


def _audio_kind(field_type: Any) -> str | None:
    import pyarrow as pa

    if not pa.types.is_struct(field_type):
        return None
    names = {field_type.field(i).name for i in range(field_type.num_fields)}
    if {"array", "sampling_rate"} <= names:
        return "array"
    if "bytes" in names or "path" in names:
        return "encoded"
    return None


def _audio_column(schema: Any, wanted: str | None, file: Path) -> str:
    if wanted is not None:
        if wanted not in schema.names or _audio_kind(schema.field(wanted).type) is None:
            raise ManifestError(
                f"{file}: {wanted!r} is not an Audio column (a struct of bytes/path or array/sampling_rate); "
                f"columns: {', '.join(schema.names)}."
            )
        return wanted
    names = sorted(schema.names, key=lambda n: n != "audio")
    found = next((n for n in names if _audio_kind(schema.field(n).type)), None)
    if found is None:
        raise ManifestError(
            f"{file}: no Audio column (a struct of bytes/path or array/sampling_rate) "
            f"among {', '.join(schema.names)}."
        )
    return found


def _text_column(schema: Any, wanted: str | None, require_text: bool, file: Path) -> str | None:
    candidates = (wanted,) if wanted else TEXT_COLUMNS
    found = next((c for c in candidates if c in schema.names), None)
    if found is None and (require_text or wanted):
        raise ManifestError(
            f"{file}: no transcript column {' or '.join(candidates)} among {', '.join(schema.names)}; "
            "pass text_column=."
        )
    return found


def _batches(file: Path) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file.suffix == ".parquet":
        yield from pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS)
        return
    with pa.memory_map(str(file)) as source:  # save_to_disk writes the Arrow streaming format
        for batch in pa.ipc.open_stream(source):
            for offset in range(0, batch.num_rows, BATCH_ROWS):
                yield batch.slice(offset, BATCH_ROWS)


def _read_rows(
    files: list[Path], audio_col: str, text_col: str | None, require_text: bool, base: Path, policy: RowPolicy
) -> Iterator[Utterance]:
    import pyarrow as pa

    index = 0
    for file in files:
        for batch in _batches(file):
            columns = batch.schema.names
            audio = batch.column(columns.index(audio_col))
            kind = _audio_kind(audio.type)
            texts = batch.column(columns.index(text_col)).to_pylist() if text_col else [None] * batch.num_rows
            scalar = [
                n for n in columns
                if n not in (audio_col, text_col) and _is_scalar(batch.schema.field(n).type, pa)
            ]
            meta_values = {n: batch.column(columns.index(n)).to_pylist() for n in scalar}
            valid = audio.is_valid().to_pylist()
            cells = audio.to_pylist() if kind == "encoded" else [None] * batch.num_rows
            for i in range(batch.num_rows):
                policy.seen()
                meta = {n: values[i] for n, values in meta_values.items() if values[i] is not None}
                row_audio = _decoded(audio, i) if kind == "array" and valid[i] else cells[i]
                utterance = _row(index, valid[i], row_audio, texts[i], meta, require_text, base, policy)
                if utterance is not None:
                    yield policy.accept(utterance)
                index += 1


def _is_scalar(field_type: Any, pa: Any) -> bool:
    t = pa.types
    return t.is_string(field_type) or t.is_large_string(field_type) or t.is_integer(field_type) or (
        t.is_floating(field_type) or t.is_boolean(field_type)
    )


def _row(
    index: int, valid: bool, row_audio: Any, text_value: Any, meta: dict[str, Any],
    require_text: bool, base: Path, policy: RowPolicy,
) -> Utterance | None:
    """One row to an Utterance; `row_audio` is the encoded struct as a dict, or `_decoded`'s result."""
    raw_id = meta.pop("id", None)
    audio_name = row_audio.get("path") if isinstance(row_audio, dict) else None
    utt_id = str(raw_id) if raw_id not in (None, "") else (PurePath(audio_name).stem if audio_name else f"row{index}")
    if not valid:
        policy.reject(index, utt_id, "audio is null")
        return None
    source, reason = row_audio if isinstance(row_audio, tuple) else _encoded(row_audio, base)
    if reason is None:
        text, reason = check_text(text_value, require_text=require_text)
    if reason is None:
        duration_key = next((k for k in DURATION_COLUMNS if k in meta), None)
        duration_s, reason = check_duration(meta.pop(duration_key) if duration_key else None)
        if duration_s is None and isinstance(source, AudioArray):
            duration_s = source.duration_s
    if reason is not None:
        policy.reject(index, utt_id, reason)
        return None
    return Utterance(id=utt_id, audio=source, text=text, duration_s=duration_s, meta=meta)


def _decoded(audio: Any, i: int) -> tuple[AudioArray | None, str | None]:
    sample_rate = audio.field("sampling_rate")[i].as_py()
    values = audio.field("array")[i]
    if not values.is_valid or sample_rate is None:
        return None, "decoded audio without array or sampling_rate"
    try:
        return AudioArray(values.values.to_numpy(zero_copy_only=False), int(sample_rate)), None
    except (ConfigError, TypeError, ValueError) as err:
        return None, f"unusable decoded audio: {err}"


def _encoded(cell: dict[str, Any], base: Path) -> tuple[bytes | Path | None, str | None]:
    if cell.get("bytes"):
        return cell["bytes"], None
    if not cell.get("path"):
        return None, "audio has neither bytes nor a path"
    path = Path(cell["path"]).expanduser()
    path = path if path.is_absolute() else Path(os.path.normpath(base / path))
    reason = check_file(path)
    return (None, f"audio has no bytes and its {reason}") if reason else (path, None)
