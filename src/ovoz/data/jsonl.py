"""JSONL manifests: one JSON object per line, read lazily; written atomically."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath
from typing import Any

from ..errors import ManifestError
from .model import AudioArray, ReadReport, RowPolicy, Utterance, check_duration, check_file, check_text

logger = logging.getLogger(__name__)

AUDIO_KEYS = ("audio", "path", "audio_filepath")
"""Keys holding the audio path, first match wins (ovoz, Common-Voice-like, NeMo)."""
TEXT_KEYS = ("text", "sentence", "transcript")
"""Keys holding the transcript, first present wins, unless `text_column` names one."""
DURATION_KEYS = ("duration", "duration_s")


def read_jsonl_manifest(
    path: str | Path,
    *,
    text_column: str | None = None,
    require_text: bool = True,
    on_error: str = "raise",
    report: ReadReport | None = None,
) -> Iterator[Utterance]:
    """Yield one `Utterance` per line of a JSONL manifest (also NeMo-style `.json`), lazily.

    Relative audio paths are resolved against the manifest's folder; each file's existence is checked
    (no decoding). A row's id is its `id` field, else its audio file's stem.

    path: the manifest file.
    text_column: the key holding the transcript; None tries text, sentence, transcript in turn.
    require_text: treat a missing or empty transcript as a bad row (False for audio to transcribe).
    on_error: "raise" stops at the first bad row (`ManifestRowError`); "skip" logs it and goes on.
    report: collects row counts and every skipped row as `(row, id, reason)`; rows are line numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: JSONL manifest not found; give the path of an existing .jsonl file.")
    policy = RowPolicy(path, on_error, report)
    return _read_jsonl(path, text_column, require_text, policy)


def _read_jsonl(path: Path, text_column: str | None, require_text: bool, policy: RowPolicy) -> Iterator[Utterance]:
    base = Path(os.path.abspath(path)).parent
    first = True
    # Binary lines: split on b"\n" only and let one undecodable line be a row error, not a crash.
    with path.open("rb") as lines:
        for line_no, raw in enumerate(lines, start=1):
            if first and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            if first and raw.lstrip().startswith(b"["):
                raise ManifestError(
                    f"{path}: holds a JSON array, not JSON Lines; write one object per line "
                    "(e.g. `jq -c '.[]' in.json > out.jsonl`)."
                )
            first = False
            policy.seen()
            utterance = _parse_line(raw, line_no, base, text_column, require_text, policy)
            if utterance is not None:
                yield policy.accept(utterance)


def _parse_line(
    raw: bytes, line_no: int, base: Path, text_column: str | None, require_text: bool, policy: RowPolicy
) -> Utterance | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        policy.reject(line_no, None, f"not UTF-8 text ({err.reason} at byte {err.start})")
        return None
    except json.JSONDecodeError as err:
        policy.reject(line_no, None, f"invalid JSON: {err.msg} at column {err.colno}")
        return None
    if not isinstance(record, dict):
        policy.reject(line_no, None, f"line is a JSON {type(record).__name__}, not an object")
        return None

    raw_id = record.pop("id", None)
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == ""):
        policy.reject(line_no, None, f"id {raw_id!r} is not a non-empty string or integer")
        return None
    utt_id = str(raw_id) if raw_id is not None else None

    audio_key = next((k for k in AUDIO_KEYS if record.get(k) is not None), None)
    if audio_key is None:
        policy.reject(line_no, utt_id, f"no audio path (give one of {', '.join(AUDIO_KEYS)})")
        return None
    audio_value = record.pop(audio_key)
    if not isinstance(audio_value, str) or not audio_value.strip():
        policy.reject(line_no, utt_id, f"{audio_key!r} is {audio_value!r}, not a path string")
        return None
    utt_id = utt_id or PurePath(audio_value).stem or audio_value
    audio_path = Path(audio_value).expanduser()
    if not audio_path.is_absolute():
        audio_path = Path(os.path.normpath(base / audio_path))  # lexical: "../clips/a.wav" stays readable
    reason = check_file(audio_path)
    if reason:
        policy.reject(line_no, utt_id, reason)
        return None

    text_keys = (text_column,) if text_column else TEXT_KEYS
    text_key = next((k for k in text_keys if k in record), None)
    text, reason = check_text(record.pop(text_key) if text_key else None, require_text=require_text)
    if reason:
        where = f"{text_column!r}" if text_column else " or ".join(TEXT_KEYS)
        policy.reject(line_no, utt_id, f"{reason} (field {where})" if text_key is None else reason)
        return None

    duration_key = next((k for k in DURATION_KEYS if k in record), None)
    duration_s, reason = check_duration(record.pop(duration_key) if duration_key else None)
    if reason:
        policy.reject(line_no, utt_id, reason)
        return None
    return Utterance(id=utt_id, audio=audio_path, text=text, duration_s=duration_s, meta=record)


def write_jsonl_manifest(utterances: Iterable[Utterance], path: str | Path) -> int:
    """Write utterances as a JSONL manifest, atomically (temp file + `os.replace`); return the row count.

    Each line holds id, audio, text, duration (when known) and the utterance's meta. Audio paths under the
    manifest's folder are written relative to it, others absolute, so reading the file back finds the same
    files from any working directory. In-memory audio (bytes, arrays) cannot be written: save it to files.

    utterances: any iterable, consumed once (streams: nothing is held in memory).
    path: the manifest to create or replace; its folder is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = Path(os.path.abspath(path)).parent
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    n_rows = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for utterance in utterances:
                out.write(json.dumps(_to_record(utterance, base), ensure_ascii=False, default=_json_default))
                out.write("\n")
                n_rows += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    logger.info("wrote %d rows to %s", n_rows, path)
    return n_rows


def _to_record(utterance: Utterance, base: Path) -> dict[str, Any]:
    if isinstance(utterance.audio, (bytes, AudioArray)):
        raise ManifestError(
            f"utterance {utterance.id!r} holds in-memory audio; a JSONL manifest stores paths. "
            "Save the audio to files first and build Utterances with their paths."
        )
    audio = Path(os.path.abspath(utterance.audio))
    audio_text = audio.relative_to(base).as_posix() if audio.is_relative_to(base) else str(audio)
    record: dict[str, Any] = {"id": utterance.id, "audio": audio_text, "text": utterance.text}
    if utterance.duration_s is not None:
        record["duration"] = utterance.duration_s
    for key, value in utterance.meta.items():
        record.setdefault(key, value)  # the core fields above win over meta keys of the same name
    return record


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"meta value of type {type(value).__name__} is not JSON serializable")
