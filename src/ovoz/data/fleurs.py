"""FLEURS folders as google/fleurs ships them: `<root>/<lang>/<split>.tsv` (no header) with audio
extracted to `<root>/<lang>/audio/<split>/<file_name>`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import ManifestError
from .model import ReadReport, RowPolicy, Utterance, check_file, check_text
from .tsv import find_lang_dir, iter_tsv_lines

DEFAULT_LANG = "uz_uz"
FLEURS_SAMPLE_RATE = 16_000
"""FLEURS audio is 16 kHz; `num_samples` counts samples at this rate."""
COLUMNS = ("id", "file_name", "raw_transcription", "transcription", "phonemes", "num_samples", "gender")
"""The TSV's columns, in order; the file has no header row."""
TEXT_COLUMNS = ("raw_transcription", "transcription")


def read_fleurs(
    root: str | Path,
    *,
    split: str = "test",
    lang: str | None = None,
    text_column: str = "raw_transcription",
    require_text: bool = True,
    on_error: str = "raise",
    report: ReadReport | None = None,
) -> Iterator[Utterance]:
    """Yield one `Utterance` per row of a FLEURS split TSV, lazily; audio stays as file paths.

    The id is the audio file's stem (FLEURS' own `id` is the sentence id, shared by every speaker who read
    it, and goes to `meta["sentence_id"]`); `duration_s` comes from `num_samples` at 16 kHz.

    root: a folder holding `<lang>/` (or `data/<lang>/`, as in the hub repository), or the `<lang>` folder.
    split: train, dev or test.
    lang: the language folder; None picks `uz_uz` when present, else the only one.
    text_column: raw_transcription (cased, punctuated: the default reference) or transcription (normalized).
    require_text, on_error, report: as for `read_jsonl_manifest`; rows are TSV line numbers.
    """
    if text_column not in TEXT_COLUMNS:
        raise ManifestError(f"FLEURS text_column={text_column!r}: choose one of {', '.join(TEXT_COLUMNS)}.")
    root = Path(root)
    if root.is_file() and root.suffix == ".tsv":
        tsv, lang_dir = root, root.parent
        split = root.stem
    else:
        lang_dir = find_lang_dir(root, split, lang, DEFAULT_LANG, "audio", "FLEURS")
        tsv = lang_dir / f"{split}.tsv"
    audio_dir = Path(os.path.abspath(lang_dir)) / "audio" / split
    if not audio_dir.is_dir():
        archive = lang_dir / "audio" / f"{split}.tar.gz"
        hint = (
            f"extract the archive first: tar -xzf {archive} -C {lang_dir / 'audio'}"
            if archive.is_file()
            else f"put the split's audio files in {audio_dir}"
        )
        raise ManifestError(f"{tsv}: audio folder {audio_dir} not found; {hint}.")
    policy = RowPolicy(tsv, on_error, report)
    return _read_rows(tsv, audio_dir, text_column, require_text, policy)


def _read_rows(
    tsv: Path, audio_dir: Path, text_column: str, require_text: bool, policy: RowPolicy
) -> Iterator[Utterance]:
    for line_no, fields in iter_tsv_lines(tsv, policy):
        policy.seen()
        if len(fields) != len(COLUMNS):
            policy.reject(line_no, None, f"{len(fields)} tab-separated fields, FLEURS rows have {len(COLUMNS)}")
            continue
        row = dict(zip(COLUMNS, fields))
        file_name = row["file_name"].strip()
        if not file_name:
            policy.reject(line_no, None, "empty file_name")
            continue
        utt_id = Path(file_name).stem
        audio = audio_dir / file_name
        reason = check_file(audio)
        if reason is None:
            text, reason = check_text(row[text_column], require_text=require_text)
        if reason is None and not row["num_samples"].strip().isdigit():
            reason = f"num_samples {row['num_samples']!r} is not a whole number"
        if reason:
            policy.reject(line_no, utt_id, reason)
            continue
        n_samples = int(row["num_samples"])
        other_text = next(c for c in TEXT_COLUMNS if c != text_column)
        meta = {
            "sentence_id": int(row["id"]) if row["id"].isdigit() else row["id"],
            other_text: row[other_text],
            "gender": row["gender"],
            "num_samples": n_samples,
        }
        yield policy.accept(
            Utterance(id=utt_id, audio=audio, text=text, duration_s=n_samples / FLEURS_SAMPLE_RATE, meta=meta)
        )
