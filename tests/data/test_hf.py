"""Local Hugging Face datasets: parquet (bytes or decoded arrays), save_to_disk Dataset / DatasetDict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from ovoz.data import AudioArray, ReadReport, read_hf_dataset  # noqa: E402
from ovoz.errors import ManifestError, ManifestRowError  # noqa: E402

AUDIO_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _encoded_table(clips: list, **extra: list) -> "pa.Table":
    audio = [{"bytes": c.path.read_bytes(), "path": c.path.name} for c in clips]
    columns = {"audio": pa.array(audio, type=AUDIO_TYPE), "sentence": [c.text for c in clips],
               "client_id": [f"spk{n}" for n in range(len(clips))], **extra}
    return pa.table(columns)


def test_parquet_with_audio_bytes(tmp_path: Path, clips: list) -> None:
    path = tmp_path / "test.parquet"
    pq.write_table(_encoded_table(clips, duration=[c.duration_s for c in clips]), path, row_group_size=2)
    utterances = list(read_hf_dataset(path))
    assert [u.id for u in utterances] == [c.path.stem for c in clips]
    assert [u.text for u in utterances] == [c.text for c in clips]  # "sentence" found on its own
    assert utterances[0].audio == clips[0].path.read_bytes()
    assert utterances[2].meta == {"client_id": "spk2"} and utterances[2].duration_s == clips[2].duration_s


def test_parquet_with_decoded_arrays_and_given_columns(tmp_path: Path) -> None:
    decoded = pa.struct([("array", pa.list_(pa.float64())), ("sampling_rate", pa.int64()), ("path", pa.string())])
    table = pa.table({
        "id": ["u1", "u2"],
        "speech": pa.array([{"array": [0.0, 0.5, -0.5, 0.25], "sampling_rate": 8000, "path": None},
                            {"array": [0.1] * 16000, "sampling_rate": 16000, "path": None}], type=decoded),
        "text": ["wrong column", "wrong column"],
        "normalized_text": ["bir", "ikki"],
    })
    pq.write_table(table, tmp_path / "t.parquet")
    first, second = read_hf_dataset(tmp_path / "t.parquet", text_column="normalized_text", audio_column="speech")
    assert first.id == "u1" and first.text == "bir"
    assert first.audio == AudioArray(np.array([0.0, 0.5, -0.5, 0.25], dtype=np.float32), 8000)
    assert first.audio_source[1] == 8000 and first.audio.samples.dtype == np.float32
    assert second.duration_s == pytest.approx(1.0)
    assert first.meta == {"text": "wrong column"}


def test_bad_rows_are_reported_by_dataset_index(tmp_path: Path, clips: list) -> None:
    audio = [
        {"bytes": clips[0].path.read_bytes(), "path": "a.wav"},   # 0 ok
        None,                                                     # 1 null audio
        {"bytes": clips[1].path.read_bytes(), "path": "b.wav"},   # 2 empty text
        {"bytes": None, "path": "nowhere.wav"},                   # 3 no bytes, file missing
        {"bytes": None, "path": "c.wav"},                         # 4 no bytes, file beside the parquet
        {"bytes": None, "path": None},                            # 5 nothing at all
    ]
    (tmp_path / "c.wav").write_bytes(clips[2].path.read_bytes())
    table = pa.table({"audio": pa.array(audio, type=AUDIO_TYPE), "text": ["a", "b", " ", "d", "e", "f"]})
    pq.write_table(table, tmp_path / "t.parquet")
    report = ReadReport()
    kept = list(read_hf_dataset(tmp_path / "t.parquet", on_error="skip", report=report))
    assert [u.text for u in kept] == ["a", "e"] and kept[1].audio == tmp_path / "c.wav"
    assert [(e.row, e.id) for e in report.skipped] == [(1, "row1"), (2, "b"), (3, "nowhere"), (5, "row5")]
    assert report.skipped[1].reason == "empty transcript"
    with pytest.raises(ManifestRowError, match="row 1"):
        list(read_hf_dataset(tmp_path / "t.parquet"))


def test_missing_columns_are_file_level_errors(tmp_path: Path, clips: list) -> None:
    pq.write_table(pa.table({"audio": pa.array([{"bytes": b"x", "path": "a"}], type=AUDIO_TYPE), "label": [1]}),
                   tmp_path / "a.parquet")
    with pytest.raises(ManifestError, match="no transcript column"):
        read_hf_dataset(tmp_path / "a.parquet")
    assert next(read_hf_dataset(tmp_path / "a.parquet", require_text=False)).text is None
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "b.parquet")
    with pytest.raises(ManifestError, match="no Audio column"):
        read_hf_dataset(tmp_path / "b.parquet")


def test_parquet_folder_in_hub_layout_picks_the_split(tmp_path: Path, clips: list) -> None:
    (tmp_path / "data").mkdir()
    pq.write_table(_encoded_table(clips[:1]), tmp_path / "data" / "test-00000-of-00001.parquet")
    pq.write_table(_encoded_table(clips[1:]), tmp_path / "data" / "train-00000-of-00002.parquet")
    assert [u.id for u in read_hf_dataset(tmp_path)] == [clips[0].path.stem]
    assert len(list(read_hf_dataset(tmp_path, split="train"))) == 2
    with pytest.raises(ManifestError, match="splits: test, train"):
        read_hf_dataset(tmp_path, split="validation")


def test_save_to_disk_dataset_and_dataset_dict(tmp_path: Path, clips: list) -> None:
    datasets = pytest.importorskip("datasets")
    table = _encoded_table(clips)
    ds = datasets.Dataset(table).cast_column("audio", datasets.Audio())  # a real Audio feature, no decoding
    ds.save_to_disk(str(tmp_path / "ds"))
    datasets.DatasetDict({"test": ds.select([0]), "train": ds}).save_to_disk(str(tmp_path / "dd"))

    utterances = list(read_hf_dataset(tmp_path / "ds"))
    assert [u.text for u in utterances] == [c.text for c in clips]
    assert utterances[1].audio == clips[1].path.read_bytes()
    assert [u.id for u in read_hf_dataset(tmp_path / "dd")] == [clips[0].path.stem]
    assert len(list(read_hf_dataset(tmp_path / "dd", split="train"))) == 3
    with pytest.raises(ManifestError, match="splits: test, train"):
        read_hf_dataset(tmp_path / "dd", split="dev")


def test_many_batches_stream_in_order(tmp_path: Path) -> None:
    n = 1000
    audio = pa.array([{"bytes": b"RIFF%d" % i, "path": f"{i}.wav"} for i in range(n)], type=AUDIO_TYPE)
    pq.write_table(pa.table({"audio": audio, "text": [f"t{i}" for i in range(n)]}), tmp_path / "t.parquet",
                   row_group_size=100)
    reader = read_hf_dataset(tmp_path / "t.parquet")
    assert [next(reader).id for _ in range(3)] == ["0", "1", "2"]
    assert [u.text for u in reader][-1] == f"t{n - 1}"
