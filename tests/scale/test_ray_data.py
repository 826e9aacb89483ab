"""Corpus transcription on Ray Data (a local cluster, CPU actors, the tiny model): the outputs equal the local
runner's file for file although an actor is killed mid-run, a bad file is reported and skipped, the index holds
one row per input, and a re-run (through ``ovoz transcribe --ray``) skips what is done and restores the index row
a dead driver did not write."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import soundfile as sf

from ovoz import cli, runner
from ovoz.audio import load_audio
from ovoz.io import expand_inputs
from ovoz.types import OUTPUT_FORMATS, SAMPLE_RATE, TranscribeOptions

pytest.importorskip("ray")

OPTIONS = TranscribeOptions(max_new_tokens=4, batch_size=2)
MEASURED = ("timings", "load_s")  # wall-clock measurements: they differ between any two runs


@pytest.fixture()
def corpus(clips, tmp_path) -> Path:
    """Five 1.5 s clips cut from a real recording (two in a subfolder), a corrupt .wav and a non-audio file."""
    root = tmp_path / "corpus"
    audio = load_audio(clips[0]["path"])
    for i, name in enumerate(["a.wav", "b.flac", "c.wav", "sub/d.wav", "sub/e.wav"]):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        start = int(i * 1.2 * SAMPLE_RATE)
        sf.write(path, audio[start : start + int(1.5 * SAMPLE_RATE)], SAMPLE_RATE)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE this is not audio")
    (root / "notes.txt").write_text("not audio")
    return root


def _without_measurements(value):
    if isinstance(value, dict):
        return {k: _without_measurements(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [_without_measurements(v) for v in value]
    return value


def _outputs(folder: Path) -> dict[str, object]:
    """Every output file under ``folder`` (the index aside): its text, JSON without the wall-clock fields."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or "_ovoz_index" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(folder))
        found[name] = _without_measurements(json.loads(text)) if path.suffix == ".json" else text
    return found


def _shard_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for shard in sorted((folder / "_ovoz_index").glob("part-*.jsonl"))
            for line in shard.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_ray_corpus_equals_the_local_runner_despite_a_killed_actor(ray_cluster, tiny_model, tiny_model_dir, corpus,
                                                                   tmp_path, monkeypatch):
    from ovoz.scale.data import FAULT_ENV, RayOptions, read_index, transcribe_corpus

    items = expand_inputs([str(corpus)])
    assert [str(item.stem) for item in items] == ["a", "b", "broken", "c", "sub/d", "sub/e"]
    local = runner.run(tiny_model, items, formats=OUTPUT_FORMATS, output_dir=tmp_path / "local", options=OPTIONS,
                       progress=False)
    assert len(local.done) == 5 and [Path(s).name for s, _ in local.failed] == ["broken.wav"]

    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"c:{marker}")  # the actor that has written c's outputs dies, once
    out = tmp_path / "ray"
    load_kwargs = {"base": str(tiny_model_dir), "adapter": None, "device": "cpu", "dtype": "float32"}
    summary = transcribe_corpus(items, formats=OUTPUT_FORMATS, output_dir=out, options=OPTIONS,
                                load_kwargs=load_kwargs,
                                ray_options=RayOptions(actors=2, gpus_per_actor=0, inputs_per_batch=2))
    assert marker.exists(), "the fault was not injected: no actor died"
    assert sorted(summary.done) == sorted(local.done) and not summary.skipped
    assert [Path(source).name for source, _ in summary.failed] == ["broken.wav"]
    assert "not a readable audio" in summary.failed[0][1]

    # Every output equals the local runner's (the killed actor's batch was redone and rewritten whole).
    assert _outputs(out) == _outputs(tmp_path / "local")
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]

    # One index row per input, none twice although a batch ran twice; the killed batch's rows name the new actor.
    rows = _shard_rows(out)
    assert collections.Counter(r["stem"] for r in rows) == {s: 1 for s in ["a", "b", "broken", "c", "sub/d", "sub/e"]}
    by_stem = {r["stem"]: r for r in read_index(out)}
    assert {s: r["status"] for s, r in by_stem.items()} == {
        "a": "done", "b": "done", "broken": "failed", "c": "done", "sub/d": "done", "sub/e": "done"}
    assert by_stem["c"]["worker"] not in marker.read_text() and by_stem["c"]["audio_s"] == pytest.approx(1.5)
    assert sorted(by_stem["sub/d"]["outputs"]) == sorted(str(out / "sub" / f"d.{f}") for f in OUTPUT_FORMATS)

    # A driver that died after a's outputs but before its index row: the re-run finds a done, without its row.
    (out / "_ovoz_index" / next(p.name for p in (out / "_ovoz_index").glob("part-*.jsonl")
                                if '"stem": "a"' in p.read_text())).unlink()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "_ovoz_index" not in p.parts}
    monkeypatch.delenv(FAULT_ENV)
    (corpus / "broken.wav").rename(tmp_path / "broken.wav")  # else the re-run retries it (as the local runner does)
    code = cli.main(["transcribe", str(corpus), "-o", str(out), "-f", "all", "--ray", "--ray-actors", "1",
                     "--ray-gpus-per-actor", "0", "--ray-batch", "2", "--base", str(tiny_model_dir), "--no-adapter",
                     "--device", "cpu", "--dtype", "float32", "--max-new-tokens", "4", "--batch-size", "2"])
    assert code == cli.EXIT_OK
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before  # nothing done was redone (and no actor was started: nothing was pending)
    by_stem = {r["stem"]: r for r in read_index(out)}
    assert len(by_stem) == 6 and by_stem["a"]["status"] == "done" and by_stem["a"]["worker"] == "driver"
    assert collections.Counter(r["stem"] for r in _shard_rows(out)) == {
        s: 1 for s in ["a", "b", "broken", "c", "sub/d", "sub/e"]}


def test_ray_options_are_checked_before_anything_runs(tmp_path, capsys):
    from ovoz.scale.data import RayOptions

    with pytest.raises(Exception, match="--ray-actors"):
        RayOptions(actors=0)
    assert cli.main(["transcribe", str(tmp_path / "x.wav"), "--ray"]) == cli.EXIT_USAGE
    assert "--output-dir" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    assert cli.main(["transcribe", "-o", str(tmp_path / "out"), "--ray", str(tmp_path / "in"),
                     str(tmp_path / "x.wav")]) == cli.EXIT_USAGE
    assert "put the inputs before --ray" in capsys.readouterr().err


def test_read_index_keeps_the_newest_row_of_each_input(tmp_path):
    """Runs never rewrite each other's shards: an input redone by a later run has a row per run; the newest wins."""
    from ovoz.io import InputItem
    from ovoz.scale.data import _row, _write_shard, read_index

    item = InputItem(Path("/in/x.wav"), Path("x"))
    old = _row(item, "failed", "x.wav: broken", "run1")
    new = {**_row(item, "done", None, "run2", audio_s=2.0), "finished_at": old["finished_at"] + 1}
    _write_shard(tmp_path, [new])
    _write_shard(tmp_path, [old, _row(InputItem(Path("/in/y.wav"), Path("y")), "done", None, "run1")])
    assert [(r["stem"], r["status"], r["run_id"]) for r in read_index(tmp_path)] == [("x", "done", "run2"),
                                                                                      ("y", "done", "run1")]
    _write_shard(tmp_path, [new])  # the same inputs again (a retried batch): the same shard, replaced
    assert len(list((tmp_path / "_ovoz_index").glob("part-*.jsonl"))) == 2


@pytest.mark.slow
def test_a_batch_that_kills_its_actor_every_time_is_given_up_alone(ray_cluster, tiny_model_dir, corpus, tmp_path,
                                                                   monkeypatch):
    """An input that crashes the process: its batch is retried, then reported failed; the other batches finish,
    and the next run records the outputs the dying actor had written as done."""
    from ovoz.scale.data import FAULT_ENV, RayOptions, read_index, transcribe_corpus

    (corpus / "broken.wav").unlink()
    items = expand_inputs([str(corpus)])  # batches of 2: [a, b], [c, sub/d], [sub/e]
    monkeypatch.setenv(FAULT_ENV, "c:")  # every actor that writes c's outputs dies
    out = tmp_path / "ray"
    kwargs = {"formats": ("txt",), "output_dir": out, "options": OPTIONS,
              "load_kwargs": {"base": str(tiny_model_dir), "adapter": None, "device": "cpu", "dtype": "float32"},
              "ray_options": RayOptions(actors=2, gpus_per_actor=0, inputs_per_batch=2, max_task_retries=1)}
    summary = transcribe_corpus(items, **kwargs)
    assert sorted(Path(s).name for s in summary.done) == ["a.wav", "b.flac", "e.wav"]
    assert [Path(s).name for s, _ in summary.failed] == ["c.wav", "d.wav"]
    assert "given up after its Ray actor died 2 times" in summary.failed[0][1]
    assert {r["stem"]: r["status"] for r in read_index(out)} == {
        "a": "done", "b": "done", "c": "failed", "sub/d": "failed", "sub/e": "done"}

    monkeypatch.delenv(FAULT_ENV)
    again = transcribe_corpus(items, **kwargs)  # c's outputs were written before its actor died: c is done
    assert [Path(s).name for s in again.done] == ["d.wav"] and len(again.skipped) == 4 and not again.failed
    rows = {r["stem"]: r for r in read_index(out)}
    assert all(r["status"] == "done" for r in rows.values()) and rows["c"]["worker"] == "driver"
