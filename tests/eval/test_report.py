"""The report's pure parts: SVG plots, HTML escaping, TSV cells."""

from __future__ import annotations

import math
from xml.etree import ElementTree

import pytest

from ovoz.eval.report import _cell
from ovoz.eval.report_html import _visible, _wer_bins, svg_histogram, svg_scatter


def test_histogram_is_well_formed_svg_with_one_bar_per_label():
    svg = svg_histogram(["0", "0\u201310", ">100"], [3, 0, 12], x_label="WER <%>", y_label="n", title="a & b")
    root = ElementTree.fromstring(svg)
    bars = root.findall("{http://www.w3.org/2000/svg}rect")[1:]  # the first rect is the plot frame
    assert len(bars) == 3
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] == 0 and heights[2] > heights[0] > 0
    assert "WER &lt;%&gt;" in svg and "a &amp; b" in svg


def test_scatter_clips_large_and_infinite_values():
    svg = svg_scatter(
        [(1.0, 0.5), (2.0, 5.0), (3.0, math.inf)], [(1.5, 0.4)], x_label="s", y_label="WER", title="t", y_cap=2.0
    )
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}path")) == 2  # two clipped points drawn as triangles
    assert len(root.findall(f"{ns}polyline")) == 1
    for circle in root.findall(f"{ns}circle"):
        assert 0 <= float(circle.get("cy")) <= float(root.get("height"))


def test_empty_plots_render():
    ElementTree.fromstring(svg_histogram([], [], x_label="x", y_label="y", title="t"))
    ElementTree.fromstring(svg_scatter([], x_label="x", y_label="y", title="t"))


@pytest.mark.parametrize(
    "wers, expected",
    [
        ([0.0, 0.0], {"0": 2}),
        ([0.05, 0.1], {"0\u201310": 2}),
        ([0.11, 1.0, 1.5], {"10\u201320": 1, "90\u2013100": 1, ">100": 1}),
    ],
)
def test_wer_bins(wers, expected):
    labels, counts = _wer_bins(wers)
    assert len(labels) == 12 and sum(counts) == len(wers)
    assert {label: count for label, count in zip(labels, counts) if count} == expected


@pytest.mark.parametrize(
    "value, text",
    [
        (None, ""),
        (True, "1"),
        (0.0, "0"),
        (0.25, "0.25"),
        (1 / 3, "0.3333"),
        (math.inf, "inf"),
        (7, "7"),
        ("a\tb\nc", "a b c"),
        ("x\x05y", "x\\x05y"),
        ("oʻzbek", "oʻzbek"),
    ],
)
def test_tsv_cells_stay_on_one_line(value, text):
    assert _cell(value) == text


def test_html_text_is_escaped_and_control_characters_shown():
    assert _visible("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert _visible("a\x00b") == "a\\x00b" and _visible(None) == ""
