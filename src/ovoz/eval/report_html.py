"""The evaluation report as one self-contained HTML page; plots are inline SVG drawn here (no matplotlib)."""

from __future__ import annotations

import html
import itertools
import math
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import EvalResult, ModelResult

__all__ = ["render_html", "svg_histogram", "svg_scatter"]

WIDTH, HEIGHT = 520, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 20, 48
N_WORST = 25
WER_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
COLOR, ACCENT = "#3b6ea8", "#d0562c"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.25rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#666;font-size:.88rem}.plots{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;max-width:520px}figcaption{font-size:.88rem;color:#444}code{font-size:.85rem}
svg text{font-family:system-ui,sans-serif;font-size:10.5px;fill:#333}
"""


def _visible(text: str | None) -> str:
    """Escape text for HTML; control characters (a random model writes some) are shown as \\xNN."""
    if text is None:
        return ""
    shown = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return html.escape(shown)


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if math.isfinite(value) else "inf"


def _frame(x_label: str, y_label: str, y_max: float, y_ticks: Sequence[float], y_format) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{plot_h}" fill="#fafbfc" stroke="#bbb"/>'
    ]
    for tick in y_ticks:
        y = TOP + plot_h * (1 - tick / y_max) if y_max else TOP + plot_h
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(y_format(tick))}</text>')
    parts.append(
        f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
    )
    parts.append(
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{html.escape(y_label)}</text>"
    )
    return parts


def _svg(parts: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>{html.escape(title)}</title>' + "".join(parts) + "</svg>"
    )


def _nice_ticks(top: float, n: int = 5) -> list[float]:
    if top <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(top / n))
    for factor in (1, 2, 5, 10):
        if top / (step * factor) <= n:
            step *= factor
            break
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def svg_histogram(labels: Sequence[str], counts: Sequence[int], *, x_label: str, y_label: str, title: str) -> str:
    """A bar chart of ``counts`` with one ``label`` under each bar."""
    top = max(max(counts, default=0), 1)
    ticks = [t for t in _nice_ticks(top) if t == int(t)]
    y_max = max(top, ticks[-1])
    parts = _frame(x_label, y_label, y_max, ticks, lambda t: f"{t:g}")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(counts), 1)
    for i, (label, count) in enumerate(zip(labels, counts)):
        h = plot_h * count / y_max
        x = LEFT + i * slot
        parts.append(
            f'<rect x="{x + slot * 0.12:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.76:.1f}" '
            f'height="{h:.1f}" fill="{COLOR}"><title>{html.escape(label)}: {count}</title></rect>'
        )
        if count:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{TOP + plot_h - h - 3:.1f}" text-anchor="middle">{count}</text>'
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">{html.escape(label)}</text>'
        )
    return _svg(parts, title)


def svg_scatter(
    points: Sequence[tuple[float, float]],
    line: Sequence[tuple[float, float]] = (),
    *,
    x_label: str,
    y_label: str,
    title: str,
    y_cap: float = 2.0,
) -> str:
    """Points (x, y) with y as a fraction shown in percent, clipped at ``y_cap`` (drawn as triangles there),
    and an optional polyline (e.g. the WER of each duration bucket)."""
    xs = [x for x, _ in points] + [x for x, _ in line]
    ys = [y for _, y in points if math.isfinite(y)] + [y for _, y in line if math.isfinite(y)]
    x_max = max(max(xs, default=1.0), 1.0) * 1.05
    y_max = min(max(max(ys, default=1.0), 1.0), y_cap)
    y_ticks = _nice_ticks(y_max)
    y_max = max(y_max, y_ticks[-1])
    parts = _frame(x_label, y_label, y_max, y_ticks, lambda t: f"{t:.0%}")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for tick in _nice_ticks(x_max, 8):
        x = LEFT + plot_w * tick / x_max
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">{tick:g}</text>')

    def at(x: float, y: float) -> tuple[float, float, bool]:
        clipped = not math.isfinite(y) or y > y_max
        y = y_max if clipped else y
        return LEFT + plot_w * x / x_max, TOP + plot_h * (1 - y / y_max), clipped

    for x, y in points:
        px, py, clipped = at(x, y)
        tip = f"{x:.1f} s, {_pct(y)}"
        if clipped:
            parts.append(
                f'<path d="M{px - 4:.1f} {py + 5:.1f} L{px + 4:.1f} {py + 5:.1f} L{px:.1f} {py - 2:.1f} Z" '
                f'fill="{COLOR}" opacity="0.75"><title>{tip}</title></path>'
            )
        else:
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{COLOR}" opacity="0.6">'
                f"<title>{tip}</title></circle>"
            )
    if line:
        coords = [at(x, y)[:2] for x, y in line]
        parts.append(
            '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
                ACCENT, " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            )
        )
        for (x, y), (vx, vy) in zip(coords, line):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{ACCENT}"><title>{vx:.1f} s: {_pct(vy)}'
                "</title></circle>"
            )
    return _svg(parts, title)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(header)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if n else f"<td>{c}</td>" for c, n in zip(row, numeric)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _wer_bins(wers: Sequence[float]) -> tuple[list[str], list[int]]:
    labels = ["0"] + [f"{lo * 100:g}\u2013{hi * 100:g}" for lo, hi in itertools.pairwise(WER_BINS)] + [">100"]
    counts = [0] * len(labels)
    for wer in wers:
        if wer == 0:
            counts[0] += 1
        elif wer > 1.0:
            counts[-1] += 1
        else:
            counts[1 + min(math.ceil(wer * 10) - 1, 9)] += 1
    return labels, counts


def _headline(result: EvalResult) -> str:
    groups = "".join(f'<th colspan="3">{html.escape(name)}</th>' for name in result.normalizers)
    top = (
        f'<tr><th rowspan="2">model</th><th rowspan="2">utterances</th><th rowspan="2">failed</th>{groups}'
        '<th rowspan="2">RTFx</th></tr>'
    )
    sub = "<tr>" + "<th>WER</th><th>CER</th><th>scored</th>" * len(result.normalizers) + "</tr>"
    rows = []
    for model in result.models:
        row: list[Any] = [html.escape(model.spec.name), len(model.hypotheses), len(model.failed)]
        for name in result.normalizers:
            report = model.scores[name].report
            row += [_pct(report.wer), _pct(report.cer), len(report.utterances)]
        row.append(f"{model.rtfx:.1f}" if model.rtfx else "-")
        rows.append(row)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if i else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead>{top}{sub}</thead><tbody>{body}</tbody></table>"


def _model_section(result: EvalResult, model: ModelResult) -> str:
    primary = result.primary
    score = model.scores[primary]
    report = score.report
    durations = [h.duration_s for h in model.hypotheses]
    parts = [f'<h2 id="{html.escape(model.spec.name)}">{html.escape(model.spec.name)}</h2>']
    info = model.info
    parts.append(
        f'<p class="muted">base <code>{html.escape(str(info.get("base")))}</code>, adapter '
        f"<code>{html.escape(str(info.get('adapter')))}</code>"
        + (f" ({html.escape(str(info.get('adapter_summary')))})" if info.get("adapter_summary") else "")
        + f", {html.escape(str(info.get('device')))}, {html.escape(str(info.get('dtype')))}"
        + (", merged" if info.get("merged") else "")
        + "</p>"
    )
    if model.failed:
        parts.append(f"<p><b>{len(model.failed)} utterances failed</b> (scored as empty hypotheses):</p>")
        parts.append(_table(["id", "error"], [[_visible(h.id), _visible(h.error)] for h in model.failed[:50]]))
    wers = [u.wer for u in report.utterances]
    labels, counts = _wer_bins(wers)
    histogram = svg_histogram(
        labels,
        counts,
        x_label=f"utterance WER, % ({primary})",
        y_label="utterances",
        title=f"{model.spec.name}: distribution of utterance WER ({primary})",
    )
    points = [(durations[u.index], u.wer) for u in report.utterances]
    line = [((b.low_s + min(b.high_s, max(durations, default=b.low_s))) / 2, b.counts.wer) for b in score.buckets]
    scatter = svg_scatter(
        points,
        line,
        x_label="duration (s)",
        y_label=f"WER ({primary})",
        title=f"{model.spec.name}: WER against duration ({primary})",
    )
    parts.append(
        '<div class="plots">'
        f"<figure>{histogram}<figcaption>Error distribution: utterances by WER under "
        f"<b>{html.escape(primary)}</b> ({len(wers)} scored).</figcaption></figure>"
        f"<figure>{scatter}<figcaption>WER ({html.escape(primary)}) against duration: one dot per "
        "utterance (triangles: clipped at the top), the line is each duration bucket's WER from summed "
        "counts.</figcaption></figure></div>"
    )
    parts.append(f"<h3>WER by duration ({html.escape(primary)})</h3>")
    parts.append(
        _table(
            ["duration", "utterances", "reference words", "word errors", f"WER {primary}", f"CER {primary}"],
            [
                [
                    b.label,
                    b.n_utterances,
                    b.counts.n_ref_words,
                    b.counts.n_word_errors,
                    _pct(b.counts.wer),
                    _pct(b.counts.cer),
                ]
                for b in score.buckets
            ],
            [False, True, True, True, True, True],
        )
    )
    parts.append(f"<h3>Most frequent word confusions ({html.escape(primary)})</h3>")
    if report.confusions:
        parts.append(
            _table(
                ["reference", "hypothesis", "count"],
                [[_visible(c.reference), _visible(c.hypothesis), c.count] for c in report.confusions],
                [False, False, True],
            )
        )
    else:
        parts.append("<p class='muted'>No substitutions.</p>")
    worst = sorted(report.utterances, key=lambda u: (-u.counts.n_word_errors, -u.wer, u.index))[:N_WORST]
    parts.append(
        f"<h3>Utterances with the most errors ({html.escape(primary)}; all in "
        f"<code>utterances.{html.escape(model.spec.name)}.tsv</code>)</h3>"
    )
    parts.append(
        _table(
            ["id", "duration (s)", "errors", f"WER {primary}", "reference", "hypothesis"],
            [
                [
                    _visible(result.utterances[u.index].id),
                    f"{durations[u.index]:.1f}",
                    u.counts.n_word_errors,
                    _pct(u.wer),
                    _visible(u.reference),
                    _visible(u.hypothesis),
                ]
                for u in worst
            ],
            [False, True, True, True, False, False],
        )
    )
    return "".join(parts)


def render_html(result: EvalResult, summary: dict[str, Any]) -> str:
    """The report page: headline table, what each normalization does, and per model plots and tables."""
    dataset = result.dataset
    options = result.options
    notes = summary.get("conventions", {})

    def _note(name: str) -> str:
        note = notes.get(name)
        if not note:
            return ""
        return f"<br>comparable with {html.escape(note['matches'])}. {html.escape(note['differs'])}"

    normalizers = "".join(
        f"<li><b>{html.escape(name)}</b>: <code>{html.escape(text)}</code>{_note(name)}</li>"
        for name, text in summary.get("normalizers", {}).items()
    )
    skipped = (
        f", {dataset['n_skipped_rows']} rows skipped (listed in summary.json)" if dataset.get("n_skipped_rows") else ""
    )
    body = [
        "<h1>ovoz evaluation</h1>",
        (
            f"<p>Dataset <code>{html.escape(str(dataset.get('spec', '?')))}</code> "
            f"({html.escape(str(dataset.get('format', '?')))}, split {html.escape(str(dataset.get('split', '?')))}): "
            f"{len(result.utterances)} utterances{skipped}. Created {html.escape(summary.get('created', ''))} "
            f"by ovoz {html.escape(summary.get('ovoz_version', ''))}.</p>"
        ),
        (
            f'<p class="muted">Decoding: max_new_tokens {options.max_new_tokens}, tokens_per_s_cap '
            f"{options.tokens_per_s_cap}, batch_size {options.batch_size}, repetition_guard {options.repetition_guard}."
            "</p>"
        ),
        "<h2>Headline</h2>",
        _headline(result),
        (
            "<p>WER and CER are corpus rates from summed error counts. Failed utterances count as empty hypotheses. "
            "<b>scored</b> is the number of utterances a normalization keeps. Each column names its normalization:</p>"
        ),
        f"<ul>{normalizers}</ul>",
        (
            f"<p class='muted'>Plots and tables below use <b>{html.escape(result.primary)}</b>; the TSV files and "
            "summary.json hold every normalization.</p>"
        ),
    ]
    body += [_model_section(result, model) for model in result.models]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ovoz evaluation: {html.escape(str(dataset.get('spec', '')))}</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
