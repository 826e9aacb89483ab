"""The evaluation report folder: JSON summary, TSV tables, the headline table and the HTML page.

Every number carries the name of the normalization that produced it: in column names
(``wer_normalized``), in a ``normalizer`` column, or under the normalizer's key in ``summary.json``.

Files written (``<model>`` is each model's name):

- ``summary.json``: dataset, decoding options, normalizations, and per model and normalization the
  corpus WER/CER with their counts, WER by duration bucket, top confusions and failures;
- ``headline.txt``: the table the CLI prints;
- ``utterances.<model>.tsv``: one row per utterance, most errors first (under the primary normalization);
- ``confusions.tsv``: the most frequent word substitutions, per model and normalization;
- ``duration_buckets.tsv``: WER and CER by utterance duration, per model and normalization;
- ``report.html``: a self-contained page with tables and SVG plots;
- ``hypotheses.jsonl``: the hypothesis cache a re-run resumes from.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import OutputWriteError
from ..io import atomic_write

if TYPE_CHECKING:
    from .metrics import ErrorCounts, UtteranceScore
    from .results import EvalResult, ModelResult

__all__ = ["headline_table", "summary_dict", "utterance_rows", "write_report"]

SUMMARY_FILE = "summary.json"
HEADLINE_FILE = "headline.txt"
CONFUSIONS_FILE = "confusions.tsv"
BUCKETS_FILE = "duration_buckets.tsv"
HTML_FILE = "report.html"


def utterances_file(model_name: str) -> str:
    return f"utterances.{model_name}.tsv"


def _num(value: float | None, digits: int | None = None) -> float | None:
    """A finite number (rounded when ``digits`` is given) for JSON; None for None, inf or nan (JSON has no inf)."""
    if value is None or not math.isfinite(value):
        return None
    return value if digits is None else round(value, digits)


def _counts(counts: ErrorCounts) -> dict[str, Any]:
    return {
        "wer": _num(counts.wer),
        "cer": _num(counts.cer),
        "n_ref_words": counts.n_ref_words,
        "n_word_errors": counts.n_word_errors,
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "hits": counts.hits,
        "n_ref_chars": counts.n_ref_chars,
        "char_errors": counts.char_errors,
    }


def _model_summary(model: ModelResult, n_utterances: int) -> dict[str, Any]:
    scores = {}
    for name, result in model.scores.items():
        report = result.report
        scores[name] = {
            "normalizer": result.description,
            "n_scored": len(report.utterances),
            "n_dropped": report.n_dropped,
            **_counts(report.corpus),
            "duration_buckets": [
                {
                    "bucket": b.label,
                    "low_s": b.low_s,
                    "high_s": _num(b.high_s),
                    "n_utterances": b.n_utterances,
                    **_counts(b.counts),
                }
                for b in result.buckets
            ],
            "confusions": [
                {"reference": c.reference, "hypothesis": c.hypothesis, "count": c.count} for c in report.confusions
            ],
        }
    return {
        "name": model.spec.name,
        "adapter": model.spec.adapter,
        "model": model.info,
        "options_key": model.options_key,
        "n_utterances": n_utterances,
        "n_failed": len(model.failed),
        "failed": [{"id": h.id, "error": h.error} for h in model.failed],
        "n_truncated": sum(h.truncated for h in model.hypotheses),
        "audio_s": _num(model.audio_s, 3),
        "compute_s": _num(model.compute_s, 3),
        "rtfx": _num(model.rtfx, 2),
        "scores": scores,
        "utterances_file": utterances_file(model.spec.name),
    }


def summary_dict(result: EvalResult) -> dict[str, Any]:
    """The content of ``summary.json``."""
    from .. import __version__

    first = result.models[0].scores if result.models else {}
    return {
        "ovoz_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": result.dataset,
        "n_utterances": len(result.utterances),
        "decoding": result.options.to_dict(),
        "normalizers": {name: first[name].description for name in result.normalizers if name in first},
        "primary_normalizer": result.primary,
        "conventions": conventions(result.normalizers),
        "failed_utterances_scored_as": "empty hypothesis",
        "models": [_model_summary(model, len(result.utterances)) for model in result.models],
    }


def conventions(names: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Per normalizer name: which published figures its numbers can stand beside (``matches``) and what it does
    that the others do not (``differs``), from :data:`ovoz.text.CONVENTION_NOTES`; names without a note (custom
    normalizers) are left out."""
    from ..text import CONVENTION_NOTES

    return {
        name: {"matches": CONVENTION_NOTES[name].matches, "differs": CONVENTION_NOTES[name].differs}
        for name in names
        if name in CONVENTION_NOTES
    }


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if math.isfinite(value) else "inf"


def headline_table(result: EvalResult) -> str:
    """A plain-text table: one row per model, WER and CER under each normalization, then what each means."""
    dataset = result.dataset
    audio_s = max((m.audio_s for m in result.models), default=0.0)
    lines = [
        f"dataset: {dataset.get('spec', '?')} ({dataset.get('format', '?')}, split {dataset.get('split', '?')}): "
        f"{len(result.utterances)} utterances, {audio_s:.1f} s of audio"
        + (f", {dataset['n_skipped_rows']} rows skipped" if dataset.get("n_skipped_rows") else "")
    ]
    from ..text import get_normalizer, keep_all

    dropping = [n for n in result.normalizers if get_normalizer(n).keep is not keep_all]
    header = ["model", "utts", "failed"]
    for name in result.normalizers:
        header += [f"WER {name}", f"CER {name}"] + ([f"n {name}"] if name in dropping else [])
    header.append("RTFx")
    rows = [header]
    for model in result.models:
        row = [model.spec.name, str(len(model.hypotheses)), str(len(model.failed))]
        for name in result.normalizers:
            report = model.scores[name].report
            row += [_pct(report.wer), _pct(report.cer)] + ([str(len(report.utterances))] if name in dropping else [])
        row.append(f"{model.rtfx:.1f}" if model.rtfx else "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    lines.append("normalizations (WER/CER from summed counts; failed utterances count as empty hypotheses):")
    for name in result.normalizers:
        if result.models:
            lines.append(f"  {name}: {result.models[0].scores[name].description}")
    notes = conventions(result.normalizers)
    if notes:
        lines.append("comparable with (put a figure only beside published figures scored the same way):")
        lines += [f"  {name}: {note['matches']}. {note['differs']}" for name, note in notes.items()]
    if result.report_dir is not None:
        lines.append(f"report: {Path(result.report_dir) / HTML_FILE}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"
    # One line per row: tabs and line breaks become spaces, other control characters \xNN
    # (the exact text stays in hypotheses.jsonl).
    text = " ".join(str(value).replace("\t", " ").splitlines())
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)


def _write_tsv(path: Path, rows: list[list[Any]]) -> None:
    with atomic_write(path) as handle:
        for row in rows:
            handle.write("\t".join(_cell(value) for value in row) + "\n")


def utterance_rows(result: EvalResult, model: ModelResult) -> list[list[Any]]:
    """The per-utterance table of one model (header first), most errors first under the primary normalization."""
    primary = result.primary
    others = [n for n in result.normalizers if n != primary]
    by_index: dict[str, dict[int, UtteranceScore]] = {
        name: {u.index: u for u in model.scores[name].report.utterances} for name in result.normalizers
    }
    header = [
        "rank",
        "id",
        "duration_s",
        f"errors_{primary}",
        f"wer_{primary}",
        f"cer_{primary}",
        f"n_ref_words_{primary}",
        f"substitutions_{primary}",
        f"deletions_{primary}",
        f"insertions_{primary}",
        *(f"wer_{name}" for name in others),
        "avg_logprob",
        "n_tokens",
        "truncated",
        "error",
        "reference",
        "hypothesis",
        f"reference_{primary}",
        f"hypothesis_{primary}",
    ]
    rows = []
    for index, (utterance, hypothesis) in enumerate(zip(result.utterances, model.hypotheses)):
        scored = by_index[primary].get(index)
        counts = scored.counts if scored else None
        rows.append(
            [
                utterance.id,
                hypothesis.duration_s,
                counts.n_word_errors if counts else None,
                counts.wer if counts else None,
                counts.cer if counts else None,
                counts.n_ref_words if counts else None,
                counts.substitutions if counts else None,
                counts.deletions if counts else None,
                counts.insertions if counts else None,
                *(by_index[name][index].wer if index in by_index[name] else None for name in others),
                hypothesis.avg_logprob,
                hypothesis.n_tokens,
                hypothesis.truncated,
                hypothesis.error,
                utterance.text,
                hypothesis.text,
                scored.reference if scored else None,
                scored.hypothesis if scored else None,
            ]
        )
    # Utterances the primary normalization dropped go last; then most errors, highest WER, id.
    rows.sort(key=lambda r: (r[2] is None, -(r[2] or 0), -(r[3] or 0), r[0]))
    return [header] + [[rank, *row] for rank, row in enumerate(rows, start=1)]


def write_report(result: EvalResult, folder: str | Path) -> Path:
    """Write every report file (see the module docstring) into ``folder``, ``summary.json`` last; return the folder.

    Raises :class:`OutputWriteError` naming the file when one cannot be written; no file is ever half-written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _write_report(result, folder)
    except OSError as error:  # disk full, read-only: each file is whole or absent, and summary.json comes last
        raise OutputWriteError(
            f"{error.filename or folder}: the report could not be written ({error.strerror or error}); free some "
            "space or give a writable report folder, then re-run (decoded hypotheses are cached and kept)."
        ) from error


def _write_report(result: EvalResult, folder: Path) -> Path:
    from .report_html import render_html

    summary = summary_dict(result)
    with atomic_write(folder / HEADLINE_FILE) as handle:
        handle.write(headline_table(result) + "\n")
    confusions: list[list[Any]] = [["model", "normalizer", "rank", "reference", "hypothesis", "count"]]
    buckets: list[list[Any]] = [
        [
            "model",
            "normalizer",
            "bucket",
            "low_s",
            "high_s",
            "n_utterances",
            "n_ref_words",
            "n_word_errors",
            "wer",
            "cer",
        ]
    ]
    for model in result.models:
        _write_tsv(folder / utterances_file(model.spec.name), utterance_rows(result, model))
        for name in result.normalizers:
            score = model.scores[name]
            confusions += [
                [model.spec.name, name, rank, c.reference, c.hypothesis, c.count]
                for rank, c in enumerate(score.report.confusions, start=1)
            ]
            buckets += [
                [
                    model.spec.name,
                    name,
                    b.label,
                    b.low_s,
                    b.high_s,
                    b.n_utterances,
                    b.counts.n_ref_words,
                    b.counts.n_word_errors,
                    b.counts.wer,
                    b.counts.cer,
                ]
                for b in score.buckets
            ]
    _write_tsv(folder / CONFUSIONS_FILE, confusions)
    _write_tsv(folder / BUCKETS_FILE, buckets)
    with atomic_write(folder / HTML_FILE) as handle:
        handle.write(render_html(result, summary))
    # Last: a summary.json means the whole report is there.
    with atomic_write(folder / SUMMARY_FILE) as handle:
        json.dump(summary, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    return folder
