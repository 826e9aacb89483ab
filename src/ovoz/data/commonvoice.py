"""Common Voice release folders: `<root>/<lang>/<split>.tsv` with audio in `<root>/<lang>/clips/`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePath

from ..errors import ManifestError
from .model import ReadReport, RowPolicy, Utterance, check_file, check_text
from .tsv import find_lang_dir, iter_tsv_lines

DEFAULT_LANG = "uz"
REQUIRED_COLUMNS = ("path",)
INT_COLUMNS = ("up_votes", "down_votes")


def read_common_voice(
    root: str | Path,
    *,
    split: str = "test",
    lang: str | None = None,
    text_column: str = "sentence",
    require_text: bool = True,
    on_error: str = "raise",
    report: ReadReport | None = None,
) -> Iterator[Utterance]:
    """Yield one `Utterance` per row of a Common Voice split TSV, lazily; audio stays as clip paths.

    The id is the clip's file stem (`common_voice_uz_123`); the other non-empty columns (client_id,
    sentence_id, up_votes, gender, ...) go to `meta`. Each clip's existence is checked, not decoded.

    root: a release folder holding `<lang>/`, the `<lang>` folder itself, or a split TSV file.
    split: the TSV to read: test, dev, train, validated, other, invalidated.
    lang: the language folder; None picks `uz` when present, else the only one.
    text_column: the column holding the transcript.
    require_text, on_error, report: as for `read_jsonl_manifest`; rows are TSV line numbers (header = 1).
    """
    root = Path(root)
    if root.is_file() and root.suffix == ".tsv":
        tsv, lang_dir = root, root.parent
    else:
        lang_dir = find_lang_dir(root, split, lang, DEFAULT_LANG, "clips", "Common Voice")
        tsv = lang_dir / f"{split}.tsv"
    policy = RowPolicy(tsv, on_error, report)
    header = _read_header(tsv)
    for column in (*REQUIRED_COLUMNS, text_column):
        if column not in header:
            raise ManifestError(
                f"{tsv}: no {column!r} column (header: {', '.join(header)}); a Common Voice TSV starts with "
                "a header row holding at least 'path' and 'sentence' (or pass text_column=)."
            )
    return _read_rows(tsv, header, Path(os.path.abspath(lang_dir)) / "clips", text_column, require_text, policy)


def _read_header(tsv: Path) -> list[str]:
    with tsv.open("r", encoding="utf-8-sig", newline="") as f:
        return f.readline().rstrip("\r\n").split("\t")


def _read_rows(
    tsv: Path, header: list[str], clips: Path, text_column: str, require_text: bool, policy: RowPolicy
) -> Iterator[Utterance]:
    lines = iter_tsv_lines(tsv, policy)
    next(lines, None)  # the header
    for line_no, fields in lines:
        policy.seen()
        if len(fields) != len(header):
            policy.reject(line_no, None, f"{len(fields)} tab-separated fields, the header has {len(header)}")
            continue
        row = dict(zip(header, fields))
        clip = row.pop("path").strip()
        if not clip:
            policy.reject(line_no, None, "empty 'path'")
            continue
        utt_id = PurePath(clip).stem
        audio = clips / clip
        if not audio.suffix and not audio.exists():
            audio = audio.with_name(audio.name + ".mp3")  # early releases list clip names without a suffix
        reason = check_file(audio)
        if reason is None:
            text, reason = check_text(row.pop(text_column), require_text=require_text)
        if reason:
            policy.reject(line_no, utt_id, reason)
            continue
        meta: dict[str, object] = {k: v for k, v in row.items() if v != ""}
        for column in INT_COLUMNS:
            if isinstance(meta.get(column), str) and meta[column].isdigit():  # type: ignore[union-attr]
                meta[column] = int(meta[column])  # type: ignore[arg-type]
        yield policy.accept(Utterance(id=utt_id, audio=audio, text=text, duration_s=None, meta=meta))
