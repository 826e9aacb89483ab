"""Writers: SRT and VTT checked with independent parsers (``srt``, ``webvtt-py``); txt, json, tsv."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from ovoz.errors import ConfigError
from ovoz.subtitles import FORMATS, SubtitleOptions, cues, format_timestamp, write, write_srt, write_vtt
from ovoz.types import OUTPUT_FORMATS, Segment, Transcript, TranscriptionInfo

LONG = ("Target Systems toʻliqligicha Alisher Abduvohidovga tegishli. Eslatib oʻtamiz, Ortiq Xoʻjayev poytaxt "
        "hokimi lavozimiga ikki ming oʻn sakkiz-yil aprelda tayinlanib, ikki ming yigirma uch-yil oʻn "
        "olti-yanvarda energetika inqirozi fonida ishdan olingandi.")


def transcript(*segments: tuple[float, float, str], duration_s: float = 120.0) -> Transcript:
    segs = tuple(Segment(id=i, start_s=s, end_s=e, text=t) for i, (s, e, t) in enumerate(segments))
    return Transcript(text=" ".join(t for _, _, t in segments), segments=segs, info=TranscriptionInfo(duration_s), source="x.wav")


SAMPLE = transcript(
    (0.0, 2.5, "Salom, dunyo!"),
    (3.0004, 20.9996, LONG),
    (20.5, 22.0, "Overlapping segment from the next chunk."),  # starts before the previous ends
    (22.0, 22.0, "   "),
    (3725.0015, 3726.4995, "soat bir <b> & 'bo'ldi'"),
    duration_s=3730.0,
)


def render(writer, t: Transcript, options: SubtitleOptions | None = None) -> str:
    buffer = io.StringIO()
    writer(t, buffer, options)
    return buffer.getvalue()


def ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)


def assert_cue_invariants(times: list[tuple[int, int]], texts: list[str], options: SubtitleOptions) -> None:
    for (start, end), text in zip(times, texts):
        assert 0 <= start < end
        lines = text.split("\n")
        assert 1 <= len(lines) <= options.max_lines
        assert all(len(line) <= options.max_line_chars for line in lines)
    for (_, prev_end), (next_start, _) in zip(times, times[1:]):
        assert prev_end <= next_start


@pytest.mark.parametrize("options", [SubtitleOptions(), SubtitleOptions(max_line_chars=20, max_lines=1),
                                     SubtitleOptions(max_line_chars=32, max_lines=3)])
def test_srt_parses_and_keeps_every_word(options):
    import srt

    text = render(write_srt, SAMPLE, options)
    parsed = list(srt.parse(text))
    times = [(ms(c.start), ms(c.end)) for c in parsed]
    assert_cue_invariants(times, [c.content for c in parsed], options)
    assert [c.index for c in parsed] == list(range(1, len(parsed) + 1))
    words = " ".join(c.content.replace("\n", " ") for c in parsed).split()
    assert words == " ".join(s.text for s in SAMPLE.segments).split()
    assert len(parsed) > 4  # the long segment was split
    assert times[0] == (0, 2500)
    assert times[-1][1] == 3726500  # 3726.4995 s rounds to .500 (rounded, not truncated)


def test_srt_long_segment_time_shared_by_characters():
    import srt

    parsed = list(srt.parse(render(write_srt, transcript((10.0, 30.0, LONG)))))
    assert ms(parsed[0].start) == 10000 and ms(parsed[-1].end) == 30000
    total_chars = sum(len(c.content.replace("\n", " ")) for c in parsed)
    for prev, nxt in zip(parsed, parsed[1:]):
        assert prev.end == nxt.start  # contiguous inside one segment
    for cue in parsed:
        share = len(cue.content.replace("\n", " ")) / total_chars
        assert abs((ms(cue.end) - ms(cue.start)) - 20000 * share) <= 2


def test_vtt_parses_with_header_escaping_and_rounding():
    import webvtt

    text = render(write_vtt, SAMPLE)
    assert text.startswith("WEBVTT\n\n")
    captions = webvtt.from_buffer(io.StringIO(text)).captions
    times = [(_vtt_ms(c.start), _vtt_ms(c.end)) for c in captions]
    assert_cue_invariants(times, [c.text for c in captions], SubtitleOptions())
    assert captions[1].start == "00:00:03.000"  # 3.0004 s
    assert captions[-1].start == "01:02:05.002"  # 3725.0015 s rounds up
    assert "&lt;b&gt; &amp;" in text and "<b>" not in text
    assert len(captions) == len(cues(SAMPLE))


def _vtt_ms(stamp: str) -> int:
    hours, minutes, seconds = stamp.split(":")
    whole, millis = seconds.split(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(whole)) * 1000 + int(millis)


def test_overlapping_segments_become_non_overlapping_cues():
    t = transcript((0.0, 10.0, "birinchi"), (9.0, 12.0, "ikkinchi"), (11.9999, 11.9999, "uchinchi"))
    out = cues(t)
    assert [(c.start_ms, c.end_ms) for c in out] == [(0, 10000), (10000, 12000), (12000, 12001)]


@pytest.mark.parametrize(("ms_value", "srt_form", "vtt_form"), [
    (0, "00:00:00,000", "00:00:00.000"),
    (3_599_999, "00:59:59,999", "00:59:59.999"),
    (3_600_000, "01:00:00,000", "01:00:00.000"),
    (360_000_000, "100:00:00,000", "100:00:00.000"),
])
def test_format_timestamp(ms_value, srt_form, vtt_form):
    assert format_timestamp(ms_value, ",") == srt_form
    assert format_timestamp(ms_value) == vtt_form


def test_empty_transcript_writes_valid_empty_files():
    import srt
    import webvtt

    empty = Transcript(text="", segments=(), info=TranscriptionInfo(0.0))
    outputs = {}
    for fmt in FORMATS:
        buffer = io.StringIO()
        write(empty, fmt, buffer)
        outputs[fmt] = buffer.getvalue()
    assert outputs["txt"] == "" and outputs["srt"] == ""
    assert outputs["vtt"] == "WEBVTT\n\n"
    assert outputs["tsv"] == "start\tend\ttext\n"
    assert json.loads(outputs["json"])["segments"] == []
    assert list(srt.parse(outputs["srt"])) == []
    assert webvtt.from_buffer(io.StringIO(outputs["vtt"])).captions == []


def test_tsv_json_txt():
    buffer = io.StringIO()
    write(SAMPLE, "tsv", buffer)
    rows = [line.split("\t") for line in buffer.getvalue().splitlines()]
    assert rows[0] == ["start", "end", "text"]
    assert rows[1] == ["0", "2500", "Salom, dunyo!"]
    assert rows[2][:2] == ["3000", "21000"]
    assert rows[3][:2] == ["21000", "22000"]  # clamped after the overlapping segment
    assert rows[-1] == ["3725002", "3726500", "soat bir <b> & 'bo'ldi'"]
    assert len(rows) == 5  # the blank segment is skipped

    buffer = io.StringIO()
    write(SAMPLE, "json", buffer)
    assert "toʻliqligicha" in buffer.getvalue()  # ensure_ascii=False
    assert json.loads(buffer.getvalue()) == json.loads(json.dumps(SAMPLE.to_dict()))

    buffer = io.StringIO()
    write(SAMPLE, "TXT", buffer)
    assert buffer.getvalue().splitlines() == ["Salom, dunyo!", LONG, "Overlapping segment from the next chunk.",
                                              "soat bir <b> & 'bo'ldi'"]


def test_formats_and_errors():
    assert tuple(FORMATS) == OUTPUT_FORMATS
    with pytest.raises(ConfigError, match="srt"):
        write(SAMPLE, "docx", io.StringIO())
    with pytest.raises(ConfigError):
        SubtitleOptions(max_line_chars=0)


def test_very_long_word_gets_its_own_line():
    word = "x" * 60
    out = cues(transcript((0.0, 4.0, f"a {word} b")), SubtitleOptions(max_line_chars=42, max_lines=2))
    assert all(len(line) <= 42 or line == word for cue in out for line in cue.lines)
    assert " ".join(" ".join(c.lines) for c in out).split() == ["a", word, "b"]
