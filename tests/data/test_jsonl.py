from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

from ovoz.data import ReadReport, RowError, Utterance, read_jsonl_manifest, write_jsonl_manifest
from ovoz.errors import ManifestError, ManifestRowError

SHARED_CLIPS = Path("/work/shared/data/uz_clips")


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def corpus(tmp_path: Path, clips: list) -> Path:
    """A folder with wav/ holding two real clips; manifests are written next to wav/."""
    (tmp_path / "wav").mkdir()
    for clip in clips[:2]:
        shutil.copyfile(clip.path, tmp_path / "wav" / clip.path.name)
    return tmp_path


def test_reads_the_real_manifest_with_resolved_paths_and_meta() -> None:
    utterances = list(read_jsonl_manifest(SHARED_CLIPS / "manifest.jsonl"))
    assert len(utterances) == 7
    first = utterances[0]
    assert first.id == "1126542829_1_33727_1"
    assert first.audio == SHARED_CLIPS / "1126542829_1_33727_1.wav"
    assert first.text.startswith("fojia oqibatida")
    assert first.duration_s == pytest.approx(8.389)
    assert first.meta["sample_rate"] == 22050 and "path" not in first.meta and "text" not in first.meta
    assert all(Path(u.audio).is_absolute() and Path(u.audio).is_file() for u in utterances)


def test_relative_paths_resolve_against_the_manifest_folder_not_the_cwd(
    corpus: Path, clips: list, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = clips[0].path.name
    _write_lines(corpus / "m.jsonl", [json.dumps({"audio": f"wav/{name}", "text": "salom"})])
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    [utt] = read_jsonl_manifest(os.path.relpath(corpus / "m.jsonl"))
    assert Path(utt.audio) == (corpus / "wav" / name) and Path(utt.audio).is_absolute()


def test_field_aliases_ids_and_text_column(corpus: Path, clips: list) -> None:
    a, b = (f"wav/{c.path.name}" for c in clips[:2])
    manifest = _write_lines(corpus / "m.json", [
        json.dumps({"audio_filepath": a, "transcript": " bir ", "duration_s": 1}),  # NeMo style
        json.dumps({"path": b, "sentence": "ikki", "id": 42, "speaker": "s1"}),
        json.dumps({"audio": str(corpus / a), "text": "uch", "normalized": "3", "id": "x"}),
    ])
    utterances = list(read_jsonl_manifest(manifest))
    assert [u.id for u in utterances] == [Path(a).stem, "42", "x"]
    assert [u.text for u in utterances] == ["bir", "ikki", "uch"]
    assert utterances[0].duration_s == 1.0 and utterances[1].duration_s is None
    assert utterances[1].meta == {"speaker": "s1"}
    [*_, third] = read_jsonl_manifest(manifest, text_column="normalized", on_error="skip")
    assert third.text == "3"


def test_each_bad_row_is_reported_with_its_line_number(
    corpus: Path, clips: list, caplog: pytest.LogCaptureFixture
) -> None:
    good = f"wav/{clips[0].path.name}"
    lines = [
        json.dumps({"audio": good, "text": "yaxshi"}),            # 1 ok
        '{"audio": "' + good + '", "text": ',                     # 2 truncated JSON
        json.dumps({"audio": "wav/missing.wav", "text": "x"}),    # 3 missing audio file
        "",                                                       # 4 blank: ignored, still counted as a line
        json.dumps({"audio": good, "text": "   "}),               # 5 empty transcript
        json.dumps({"audio": good}),                              # 6 no transcript
        json.dumps({"audio": good, "text": 12}),                  # 7 transcript of the wrong type
        json.dumps({"audio": good, "text": "x", "duration": "long"}),  # 8 bad duration
        json.dumps(["not", "an", "object"]),                      # 9 not an object
        json.dumps({"text": "no audio"}),                         # 10 no audio key
        json.dumps({"audio": 5, "text": "x", "id": "n5"}),        # 11 audio of the wrong type
        json.dumps({"audio": "wav", "text": "x"}),                # 12 a folder, not a file
        json.dumps({"audio": good, "text": "oxirgi", "id": "last"}),  # 13 ok
    ]
    manifest = _write_lines(corpus / "bad.jsonl", lines)
    seen: list[RowError] = []
    report = ReadReport(on_skip=seen.append)
    with caplog.at_level(logging.WARNING, logger="ovoz.data"):
        utterances = list(read_jsonl_manifest(manifest, on_error="skip", report=report))
    assert [u.text for u in utterances] == ["yaxshi", "oxirgi"]
    expected = {
        2: "invalid JSON", 3: "not found", 5: "empty transcript", 6: "missing transcript", 7: "int, not a string",
        8: "not a number", 9: "not an object", 10: "no audio path", 11: "not a path string", 12: "is a folder",
    }
    assert [e.row for e in report.skipped] == list(expected)
    for error in report.skipped:
        assert expected[error.row] in error.reason, error
        assert error.source == str(manifest)
    assert report.skipped[1].id == "missing" and report.skipped[8].id == "n5"
    assert seen == report.skipped
    assert (report.n_rows, report.n_yielded, report.n_skipped) == (12, 2, 10)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 10


def test_raise_policy_stops_at_the_first_bad_row_naming_file_and_row(corpus: Path, clips: list) -> None:
    good = f"wav/{clips[0].path.name}"
    manifest = _write_lines(corpus / "bad.jsonl", [
        json.dumps({"audio": good, "text": "a"}),
        json.dumps({"audio": "wav/gone.wav", "text": "b", "id": "g"}),
        "{broken",
    ])
    reader = read_jsonl_manifest(manifest)
    assert next(reader).text == "a"
    with pytest.raises(ManifestRowError) as info:
        next(reader)
    assert (info.value.row, info.value.id) == (2, "g")
    assert str(manifest) in str(info.value) and "row 2" in str(info.value) and "on_error='skip'" in str(info.value)


def test_text_is_optional_when_not_required(corpus: Path, clips: list) -> None:
    manifest = _write_lines(corpus / "m.jsonl", [json.dumps({"audio": f"wav/{clips[0].path.name}"})])
    [utt] = read_jsonl_manifest(manifest, require_text=False)
    assert utt.text is None


def test_missing_manifest_and_json_array_are_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        read_jsonl_manifest(tmp_path / "nope.jsonl")
    array = _write_lines(tmp_path / "a.json", ['[{"audio": "x.wav", "text": "y"}]'])
    with pytest.raises(ManifestError, match="JSON array"):
        list(read_jsonl_manifest(array))


def _file_offset(path: Path) -> int:
    """The kernel's read offset of this process' open descriptor on `path` (Linux /proc)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                return int(Path(f"/proc/self/fdinfo/{fd}").read_text().split()[1])
        except OSError:
            continue
    raise AssertionError(f"{path} is not open")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads file offsets from /proc")
def test_streams_a_100k_line_manifest_lazily(tmp_path: Path, clips: list) -> None:
    shutil.copyfile(clips[0].path, tmp_path / "a.wav")
    line = json.dumps({"audio": "a.wav", "text": "salom dunyo, bu uzun manifestning bir qatori"}) + "\n"
    manifest = tmp_path / "big.jsonl"
    with manifest.open("w", encoding="utf-8") as f:
        f.writelines(itertools.repeat(line, 100_000 - 1))
        f.write("{this last line is broken\n")  # a reader that parses ahead would raise on it
    size = manifest.stat().st_size
    reader = read_jsonl_manifest(manifest.resolve())
    first = list(itertools.islice(reader, 5))
    assert [u.text for u in first] == ["salom dunyo, bu uzun manifestning bir qatori"] * 5
    assert _file_offset(manifest.resolve()) < size // 20  # a buffer's worth read, not the 6 MB file
    reader.close()


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    original = list(read_jsonl_manifest(SHARED_CLIPS / "manifest.jsonl"))
    extra = Utterance("rel", Path(os.path.relpath(original[0].audio)), "nisbiy yo'l", None, {"n": 1})
    out = tmp_path / "out" / "m.jsonl"
    assert write_jsonl_manifest([*original, extra], out) == 8
    again = list(read_jsonl_manifest(out))
    assert again[:7] == original
    assert again[7] == Utterance("rel", original[0].audio, "nisbiy yo'l", None, {"n": 1})
    assert "ʻ" in out.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes


def test_write_puts_files_under_the_manifest_folder_as_relative_paths(tmp_path: Path, clips: list) -> None:
    shutil.copyfile(clips[0].path, tmp_path / "a.wav")
    write_jsonl_manifest([Utterance("a", tmp_path / "a.wav", "x", 1.5)], tmp_path / "m.jsonl")
    record = json.loads((tmp_path / "m.jsonl").read_text(encoding="utf-8"))
    assert record == {"id": "a", "audio": "a.wav", "text": "x", "duration": 1.5}


def test_write_is_atomic(tmp_path: Path, clips: list) -> None:
    target = tmp_path / "m.jsonl"
    target.write_text("old\n", encoding="utf-8")

    def failing():
        yield Utterance("a", clips[0].path, "x")
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        write_jsonl_manifest(failing(), target)
    with pytest.raises(ManifestError, match="in-memory audio"):
        write_jsonl_manifest([Utterance("b", b"RIFF....", "x")], target)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # no temp files left behind
