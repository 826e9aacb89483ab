"""open_dataset: format detection from the path, limit, and errors that name the accepted layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ovoz.data import ReadReport, detect_format, open_dataset
from ovoz.errors import ConfigError, ManifestError

SHARED_CLIPS = Path("/work/shared/data/uz_clips")


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory: pytest.TempPathFactory, clips: list) -> dict[str, Path]:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root = tmp_path_factory.mktemp("hf")
    audio = pa.array([{"bytes": c.path.read_bytes(), "path": c.path.name} for c in clips],
                     type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    table = pa.table({"audio": audio, "transcription": [c.text for c in clips]})
    (root / "hub" / "data").mkdir(parents=True)
    pq.write_table(table, root / "hub" / "data" / "test-00000-of-00001.parquet")
    pq.write_table(table, root / "one.parquet")
    return {"parquet_folder": root / "hub", "parquet_file": root / "one.parquet"}


def test_detects_every_layout(cv_root: Path, fleurs_root: Path, hf_dirs: dict[str, Path]) -> None:
    cases = [
        (SHARED_CLIPS / "manifest.jsonl", "jsonl", SHARED_CLIPS / "manifest.jsonl"),
        (SHARED_CLIPS, "jsonl", SHARED_CLIPS / "manifest.jsonl"),
        (cv_root, "common_voice", cv_root),
        (cv_root / "uz", "common_voice", cv_root / "uz"),
        (cv_root / "uz" / "test.tsv", "common_voice", cv_root / "uz" / "test.tsv"),
        (fleurs_root, "fleurs", fleurs_root),
        (fleurs_root / "uz_uz", "fleurs", fleurs_root / "uz_uz"),
        (fleurs_root / "uz_uz" / "test.tsv", "fleurs", fleurs_root / "uz_uz" / "test.tsv"),
        (hf_dirs["parquet_folder"], "hf", hf_dirs["parquet_folder"]),
        (hf_dirs["parquet_file"], "hf", hf_dirs["parquet_file"]),
    ]
    for spec, expected_format, expected_path in cases:
        assert detect_format(spec) == (expected_format, expected_path), spec
        assert len(list(open_dataset(spec))) in (3, 7), spec


def test_detects_save_to_disk_folders(tmp_path: Path, clips: list) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"audio": [{"bytes": clips[0].path.read_bytes(), "path": "a.wav"}],
                                     "text": ["salom"]})
    ds.save_to_disk(str(tmp_path / "ds"))
    datasets.DatasetDict({"validation": ds}).save_to_disk(str(tmp_path / "dd"))
    assert detect_format(tmp_path / "ds") == ("hf", tmp_path / "ds")
    [utt] = open_dataset(tmp_path / "dd", split="validation")
    assert utt.text == "salom" and utt.id == "a"


def test_split_picks_the_jsonl_in_a_folder(tmp_path: Path, clips: list) -> None:
    shutil.copyfile(clips[0].path, tmp_path / "a.wav")
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps({"audio": "a.wav", "text": split}) + "\n", encoding="utf-8")
    assert [u.text for u in open_dataset(tmp_path, split="train")] == ["train"]
    assert [u.text for u in open_dataset(tmp_path)] == ["test"]


def test_unrecognized_paths_name_the_path_and_the_accepted_layouts(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    for spec in (tmp_path, tmp_path / "notes.txt", tmp_path / "missing"):
        with pytest.raises(ManifestError) as info:
            open_dataset(spec)
        message = str(info.value)
        assert str(spec) in message
        for layout in ("JSONL", "Common Voice", "FLEURS", "Hugging Face"):
            assert layout in message


def test_limit_text_column_and_report_pass_through(fleurs_root: Path) -> None:
    report = ReadReport()
    utterances = list(open_dataset(fleurs_root, text_column="transcription", limit=2, report=report))
    assert len(utterances) == 2 and utterances[0].text.islower()
    assert (report.n_rows, report.n_yielded) == (2, 2)
    assert list(open_dataset(fleurs_root, limit=0)) == []
    forced = open_dataset(fleurs_root / "uz_uz" / "test.tsv", format="fleurs")
    assert [u.id for u in forced] == ["100077", "100177", "100277"]


@pytest.mark.parametrize("options", [{"limit": -1}, {"limit": 1.5}, {"format": "csv"}, {"on_error": "ignore"}])
def test_bad_options_raise_config_errors(options: dict) -> None:
    with pytest.raises(ConfigError):
        open_dataset(SHARED_CLIPS / "manifest.jsonl", **options)
