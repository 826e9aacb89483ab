"""Common Voice and FLEURS folders in their real layouts."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from ovoz.data import ReadReport, read_common_voice, read_fleurs
from ovoz.errors import ManifestError, ManifestRowError


def test_common_voice_release_folder(cv_root: Path, clips: list) -> None:
    utterances = list(read_common_voice(cv_root))
    assert [u.id for u in utterances] == ["common_voice_uz_4000", "common_voice_uz_4001", "common_voice_uz_4002"]
    assert utterances[0].text == clips[0].text
    assert utterances[1].text == f'"{clips[1].text}" dedi'  # unquoted TSV: quotes kept verbatim
    first = utterances[0]
    assert first.audio == cv_root / "uz" / "clips" / "common_voice_uz_4000.mp3" and Path(first.audio).is_file()
    assert Path(first.audio).read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")  # ffmpeg made a real mp3
    assert first.meta["client_id"] == "c0" * 8 and first.meta["up_votes"] == 2 and first.meta["locale"] == "uz"
    assert "accents" not in first.meta and "sentence" not in first.meta and first.duration_s is None


def test_common_voice_lang_folder_and_tsv_file_read_the_same(cv_root: Path) -> None:
    expected = [u.id for u in read_common_voice(cv_root)]
    assert [u.id for u in read_common_voice(cv_root / "uz")] == expected
    assert [u.id for u in read_common_voice(cv_root / "uz" / "test.tsv")] == expected


def test_common_voice_bad_rows_are_reported_by_line(tmp_path: Path, cv_root: Path) -> None:
    lang = tmp_path / "uz"
    shutil.copytree(cv_root / "uz", lang)
    lines = (lang / "test.tsv").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("common_voice_uz_4001.mp3", "common_voice_uz_9999.mp3")  # line 3: no such clip
    lines.append("only\ttwo")  # line 5: wrong field count
    fields = lines[1].split("\t")
    fields[3] = ""
    lines.append("\t".join(fields))  # line 6: empty sentence
    (lang / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ReadReport()
    kept = list(read_common_voice(tmp_path, on_error="skip", report=report))
    assert [u.id for u in kept] == ["common_voice_uz_4000", "common_voice_uz_4002"]
    expected = [(3, "common_voice_uz_9999"), (5, None), (6, "common_voice_uz_4000")]
    assert [(e.row, e.id) for e in report.skipped] == expected
    assert "not found" in report.skipped[0].reason and "empty transcript" in report.skipped[2].reason
    with pytest.raises(ManifestRowError, match="row 3"):
        list(read_common_voice(tmp_path))


def test_common_voice_language_choice(tmp_path: Path, cv_root: Path) -> None:
    for lang in ("kk", "ky"):
        shutil.copytree(cv_root / "uz", tmp_path / lang)
    with pytest.raises(ManifestError, match="kk, ky"):
        read_common_voice(tmp_path)
    assert len(list(read_common_voice(tmp_path, lang="ky"))) == 3
    shutil.copytree(cv_root / "uz", tmp_path / "uz")
    assert len(list(read_common_voice(tmp_path))) == 3  # uz preferred among several
    with pytest.raises(ManifestError, match="split 'dev'"):
        read_common_voice(tmp_path, split="dev")


def test_common_voice_missing_column(tmp_path: Path, cv_root: Path) -> None:
    shutil.copytree(cv_root / "uz", tmp_path / "uz")
    with pytest.raises(ManifestError, match="'transcript' column"):
        read_common_voice(tmp_path, text_column="transcript")


def test_fleurs_folder(fleurs_root: Path, clips: list) -> None:
    utterances = list(read_fleurs(fleurs_root))
    assert [u.id for u in utterances] == ["100077", "100177", "100277"]
    first = utterances[0]
    assert first.text == clips[0].text.capitalize() + "."  # raw_transcription by default
    assert first.audio == fleurs_root / "uz_uz" / "audio" / "test" / "100077.wav"
    assert first.duration_s == pytest.approx(int(clips[0].duration_s * 16000) / 16000)
    assert first.meta == {"sentence_id": 1751, "transcription": clips[0].text, "gender": "MALE",
                          "num_samples": int(clips[0].duration_s * 16000)}
    assert utterances[1].meta["sentence_id"] == 1751  # shared sentence id, distinct utterance ids
    normalized = list(read_fleurs(fleurs_root / "uz_uz", text_column="transcription"))
    assert [u.text for u in normalized] == [c.text for c in clips]
    assert normalized[0].meta["raw_transcription"] == first.text
    with pytest.raises(ManifestError, match="text_column"):
        read_fleurs(fleurs_root, text_column="sentence")


def test_fleurs_bad_rows_and_archived_audio(tmp_path: Path, fleurs_root: Path) -> None:
    lang = tmp_path / "data" / "uz_uz"  # the hub repository's data/<lang> layout
    shutil.copytree(fleurs_root / "uz_uz", lang)
    tsv = lang / "test.tsv"
    lines = tsv.read_text(encoding="utf-8").splitlines()
    lines[1] = "\t".join(lines[1].split("\t")[:6])  # line 2: six fields
    lines.append("1753\tgone.wav\tA.\ta\t\t16000\tMALE")  # line 4: missing audio
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ReadReport()
    assert [u.id for u in read_fleurs(tmp_path, on_error="skip", report=report)] == ["100077", "100277"]
    assert [(e.row, e.id) for e in report.skipped] == [(2, None), (4, "gone")]

    with tarfile.open(lang / "audio" / "test.tar.gz", "w:gz") as archive:
        archive.add(lang / "audio" / "test", arcname="test")
    shutil.rmtree(lang / "audio" / "test")
    with pytest.raises(ManifestError, match="tar -xzf"):
        read_fleurs(tmp_path)
