"""Helpers shared by the TSV-based corpus readers (Common Voice, FLEURS): folder lookup and line reading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import ManifestError
from .model import RowPolicy


def find_lang_dir(root: Path, split: str, lang: str | None, default_lang: str, audio_dir: str, layout: str) -> Path:
    """The language folder holding `<split>.tsv` and `audio_dir/`: `root` itself or one of its subfolders.

    root: a language folder, or a release folder holding language folders (also under `data/`).
    lang: the language folder to pick; None picks `default_lang` when present, else the only one.
    """

    def is_lang_dir(folder: Path) -> bool:
        return (folder / f"{split}.tsv").is_file() and (folder / audio_dir).is_dir()

    if is_lang_dir(root) and (lang is None or root.name == lang):
        return root
    parents = [root, root / "data"]
    candidates = {
        d.name: d
        for parent in parents
        if parent.is_dir()
        for d in sorted(parent.iterdir())
        if d.is_dir() and is_lang_dir(d)
    }
    wanted = lang or (default_lang if default_lang in candidates else None)
    if wanted is not None and wanted in candidates:
        return candidates[wanted]
    if wanted is None and len(candidates) == 1:
        return next(iter(candidates.values()))
    found = ", ".join(candidates) or "none"
    raise ManifestError(
        f"{root}: no {layout} language folder for split {split!r}"
        + (f" and lang {lang!r}" if lang else "")
        + f" (found: {found}). Expected <root>/<lang>/{split}.tsv beside <root>/<lang>/{audio_dir}/, "
        "or the <lang> folder itself; pass lang= to choose among several."
    )


def iter_tsv_lines(path: Path, policy: RowPolicy) -> Iterator[tuple[int, list[str]]]:
    """Yield `(line_number, fields)` per non-blank line, split on tabs with no quoting (as CV and FLEURS
    write them: transcripts may hold quote characters). An undecodable line is rejected through `policy`."""
    with path.open("rb") as lines:
        for line_no, raw in enumerate(lines, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                policy.seen()
                policy.reject(line_no, None, f"not UTF-8 text ({err.reason} at byte {err.start})")
                continue
            if line.strip():
                yield line_no, line.split("\t")
