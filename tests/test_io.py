"""Atomic writes and input discovery: files, folders, JSONL manifests (no model needed)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ovoz.errors import ConfigError
from ovoz.io import atomic_write, expand_inputs, safe_stem


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old complete text\n")
    for error in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_write(target) as handle:
            handle.write("new half-wri")
            raise error
        assert target.read_text() == "old complete text\n"
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "sub" / "new.txt") as handle:
        handle.write("x")
        raise RuntimeError
    assert not (tmp_path / "sub" / "new.txt").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out.txt", "sub"]  # no .part files left


def test_atomic_write_replaces_with_normal_permissions(tmp_path):
    target = tmp_path / "deep" / "out.json"
    with atomic_write(target) as handle:
        handle.write("oʻzbek tili\n")
    assert target.read_text(encoding="utf-8") == "oʻzbek tili\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with atomic_write(target, "wb") as handle:
        handle.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


@pytest.fixture
def tree(tmp_path) -> Path:
    for name in ("b.wav", "a.MP3", "sub/c.flac", "sub/deeper/d.m4a", "notes.txt", "cover.jpg"):
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path / "in"


def test_folders_are_searched_recursively_by_extension(tree):
    items = expand_inputs([str(tree)])
    assert [(i.source.relative_to(tree).as_posix(), i.stem.as_posix()) for i in items] == [
        ("a.MP3", "a"), ("b.wav", "b"), ("sub/c.flac", "sub/c"), ("sub/deeper/d.m4a", "sub/deeper/d")]
    assert all(i.error is None for i in items)


def test_files_folders_duplicates_and_collisions(tree, tmp_path):
    # A file given directly and again through its folder is transcribed once.
    items = expand_inputs([str(tree / "b.wav"), str(tree)])
    assert [i.stem.as_posix() for i in items] == ["b", "a", "sub/c", "sub/deeper/d"]
    # A missing file is kept, marked unusable before any decoding: the run reports it without a model.
    [missing] = expand_inputs([str(tmp_path / "missing.wav")])
    assert (missing.source, missing.stem) == (tmp_path / "missing.wav", Path("missing"))
    assert missing.error.startswith(f"{tmp_path / 'missing.wav'}: no such file")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "b.wav").write_bytes(b"x")
    # Two files that would write the same name both get one: the later gets _2.
    items = expand_inputs([str(tree / "b.wav"), str(tmp_path / "other" / "b.wav")])
    assert [(i.source, i.stem) for i in items] == [(tree / "b.wav", Path("b")),
                                                  (tmp_path / "other" / "b.wav", Path("b_2"))]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio or video files"):
        expand_inputs([str(tmp_path / "empty")])


@pytest.mark.parametrize(("name", "expected"), [
    ("utt_001", "utt_001"),
    ("spk1/utt 2", "spk1_utt_2"),
    ("../../etc/passwd", "_.._etc_passwd"),
    ("..", "_"),
    ("oʻzbek-nutq.1", "oʻzbek-nutq.1"),
    ("ўзбек:нутқ?*", "ўзбек_нутқ_"),
    ("a" * 300, "a" * 200),
    ("ў" * 150, "ў" * 100),  # 300 bytes of Cyrillic: capped in bytes, at a character boundary
    ("a" + "ў" * 150, "a" + "ў" * 99),
])
def test_safe_stem(name, expected):
    assert safe_stem(name) == expected
    assert "/" not in safe_stem(name) and not safe_stem(name).startswith(".")


def test_jsonl_manifest_rows_become_items_named_by_id(tree, tmp_path):
    manifest = tmp_path / "lists" / "set.jsonl"
    manifest.parent.mkdir()
    rows = [
        {"id": "spk1/utt 1", "audio": "../in/b.wav", "text": "salom"},       # relative to the manifest
        {"audio": str(tree / "sub" / "c.flac")},                            # no id: the file's stem; no text
        {"id": "gone", "audio": "../in/missing.wav"},                       # missing file: a failure, not a crash
    ]
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = expand_inputs([str(manifest)])
    good = [i for i in items if i.error is None]
    assert [(i.source, i.stem) for i in good] == [(tree / "b.wav", Path("spk1_utt_1")), (tree / "sub" / "c.flac", Path("c"))]
    bad = [i for i in items if i.error is not None]
    assert [(i.source, i.stem) for i in bad] == [(manifest, Path("gone")), (manifest, Path("row4"))]
    assert "row 3 (id=gone): audio file not found" in bad[0].error and "missing.wav" in bad[0].error
    assert bad[1].error.startswith("row 4 (id=None): invalid JSON")


def test_manifest_problems(tmp_path, tree):
    missing = expand_inputs([str(tmp_path / "nope.jsonl")])
    assert len(missing) == 1 and "no such manifest" in missing[0].error
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ConfigError, match="holds no rows"):
        expand_inputs([str(tmp_path / "empty.jsonl")])
    twice = tmp_path / "twice.jsonl"
    twice.write_text(json.dumps({"id": "x", "audio": str(tree / "b.wav")}) + "\n"
                     + json.dumps({"id": "x", "audio": str(tree / "a.MP3")}) + "\n")
    assert [i.stem.name for i in expand_inputs([str(twice)])] == ["x", "x_2"]


def test_ids_that_sanitise_alike_get_distinct_names_with_a_warning(tree, tmp_path, caplog):
    manifest = tmp_path / "alike.jsonl"
    rows = [{"id": name, "audio": str(tree / "b.wav")} for name in ("a/b", "a_b", "a b", "a_b_2")]
    rows.append({"id": "a/b", "audio": str(tree / "b.wav")})  # the very same row again: kept once
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with caplog.at_level("WARNING", logger="ovoz.io"):
        items = expand_inputs([str(manifest)])
    assert [(i.id, i.stem.name) for i in items] == [("a/b", "a_b"), ("a_b", "a_b_2"), ("a b", "a_b_3"),
                                                   ("a_b_2", "a_b_2_2")]
    assert "id 'a_b'" in caplog.text and "written as a_b_2" in caplog.text


def test_long_ids_fit_the_file_system_with_the_part_suffix(tree, tmp_path):
    """150 Cyrillic letters are 300 bytes: capped in bytes, and the atomic writer's temporary name fits too."""
    manifest = tmp_path / "long.jsonl"
    manifest.write_text(json.dumps({"id": "ў" * 150, "audio": str(tree / "b.wav")}) + "\n", encoding="utf-8")
    [item] = expand_inputs([str(manifest)])
    assert len(item.stem.name.encode()) <= 200
    for fmt in ("txt", "json"):
        target = tmp_path / "out" / f"{item.stem.name}.{fmt}"
        with atomic_write(target) as handle:
            handle.write("salom")
        assert target.read_text() == "salom"
    longest = tmp_path / "out" / ("x" * 251 + ".txt")  # a 255-byte name: its temporary name is cut to fit
    with atomic_write(longest) as handle:
        handle.write("ok")
    assert longest.read_text() == "ok"


def test_usage_errors_and_non_regular_inputs(tmp_path):
    with pytest.raises(ConfigError, match="empty string"):
        expand_inputs([""])
    with pytest.raises(ConfigError, match="no inputs"):
        expand_inputs([])
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    [item] = expand_inputs([str(fifo)])
    assert "FIFO" in item.error and str(fifo) in item.error


def test_check_output_dir(tmp_path):
    from ovoz.errors import OutputWriteError
    from ovoz.io import check_output_dir

    assert check_output_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"  # created
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(OutputWriteError, match=r"output_dir=.*(is a file|cannot write there)"):
            check_output_dir(bad)
    unwritable = [Path("/sys/ovoz-test")]  # sysfs refuses new entries, even to root
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o555)
        unwritable.append(tmp_path / "ro")
    for bad in unwritable:
        if not Path("/sys").is_dir():
            continue
        with pytest.raises(OutputWriteError, match="cannot write there.*give a writable folder"):
            check_output_dir(bad)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith("tmp")]  # the probe file is gone
