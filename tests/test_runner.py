"""Multi-input runs: an interrupted folder run resumes, outputs are never half-written, failures are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt

import ovoz
from ovoz import runner, subtitles
from ovoz.audio import load_audio
from ovoz.io import InputItem, expand_inputs
from ovoz.types import OUTPUT_FORMATS, SAMPLE_RATE, TranscribeOptions

FAST = TranscribeOptions(max_new_tokens=4)


class CountingModel:
    """Wraps the tiny model: counts ``transcribe`` calls and raises ``fail_with`` on call number ``fail_on``."""

    def __init__(self, model, fail_on: int | None = None, fail_with: BaseException | None = None) -> None:
        self.model, self.fail_on, self.fail_with = model, fail_on, fail_with
        self.calls: list[Path] = []

    def transcribe(self, source, **kwargs):
        self.calls.append(Path(source))
        if len(self.calls) == self.fail_on:
            raise self.fail_with or KeyboardInterrupt()
        return self.model.transcribe(source, **kwargs)


@pytest.fixture(scope="module")
def folder(clips, tmp_path_factory) -> Path:
    """Six 1.5 s clips cut from the real recordings, one in a subfolder, plus a file that is not audio."""
    root = tmp_path_factory.mktemp("inputs")
    audio = load_audio(clips[0]["path"])
    names = ["a.wav", "b.flac", "c.wav", "d.wav", "sub/e.wav", "sub/f.wav"]
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(exist_ok=True)
        start = int(i * 1.2 * SAMPLE_RATE)
        sf.write(path, audio[start:start + int(1.5 * SAMPLE_RATE)], SAMPLE_RATE)
    (root / "notes.txt").write_text("not audio")
    return root


def run(model, items, out: Path, **kwargs) -> runner.RunSummary:
    return runner.run(model, items, formats=OUTPUT_FORMATS, output_dir=out, options=FAST, progress=False, **kwargs)


def assert_complete(out: Path, stem: str) -> None:
    """All five outputs of ``stem`` exist and parse."""
    document = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    assert document["segments"] and document["duration_s"] == pytest.approx(1.5, abs=0.01)
    assert (out / f"{stem}.txt").read_text(encoding="utf-8").strip().replace("\n", " ") == " ".join(
        " ".join(s["text"].split()) for s in document["segments"] if s["text"].strip())
    list(srt.parse((out / f"{stem}.srt").read_text(encoding="utf-8")))
    assert (out / f"{stem}.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    assert (out / f"{stem}.tsv").read_text(encoding="utf-8").startswith("start\tend\ttext\n")


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".part") or p.name.startswith(".")]


def test_interrupted_folder_run_resumes_and_finishes(tiny_model, folder, tmp_path):
    items = expand_inputs([str(folder)])
    stems = [str(item.stem) for item in items]
    assert stems == ["a", "b", "c", "d", "sub/e", "sub/f"]
    out = tmp_path / "out"

    interrupted = CountingModel(tiny_model, fail_on=4)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, items, out)
    for stem in stems[:3]:
        assert_complete(out, stem)
    assert not any(out.glob("d.*")) and not (out / "sub").exists()
    assert leftovers(out) == []

    resumed = CountingModel(tiny_model)
    summary = run(resumed, items, out)
    assert [p.name for p in resumed.calls] == ["d.wav", "e.wav", "f.wav"]
    assert summary.skipped == [str(i.source) for i in items[:3]] and len(summary.done) == 3 and not summary.failed
    for stem in stems:
        assert_complete(out, stem)
    assert leftovers(out) == []

    again = CountingModel(tiny_model)
    assert len(run(again, items, out).skipped) == 6 and again.calls == []
    redo = CountingModel(tiny_model)
    summary = run(redo, items, out, overwrite=True)
    assert len(redo.calls) == 6 and len(summary.done) == 6 and not summary.skipped


def test_interrupt_while_writing_leaves_no_partial_file(tiny_model, folder, tmp_path, monkeypatch):
    """Ctrl-C in the middle of the srt of an input: its earlier formats are complete, srt is absent, and the
    re-run redoes that input."""
    items = expand_inputs([str(folder / "a.wav"), str(folder / "c.wav")])
    out = tmp_path / "out"
    real_write = subtitles.write

    def write(transcript, fmt, file, options=None):
        if fmt == "srt" and Path(transcript.source).name == "c.wav":
            file.write("1\n00:00:00,000 --> ")
            raise KeyboardInterrupt
        real_write(transcript, fmt, file, options)

    monkeypatch.setattr(subtitles, "write", write)
    with pytest.raises(KeyboardInterrupt):
        run(CountingModel(tiny_model), items, out)
    assert_complete(out, "a")
    assert (out / "c.txt").exists() and (out / "c.json").exists() and not (out / "c.srt").exists()
    assert leftovers(out) == []

    monkeypatch.setattr(subtitles, "write", real_write)
    model = CountingModel(tiny_model)
    run(model, items, out)
    assert [p.name for p in model.calls] == ["c.wav"]
    assert_complete(out, "c")


def test_a_failing_input_is_recorded_and_the_run_goes_on(tiny_model, folder, tmp_path):
    items = expand_inputs([str(folder)])[:4]
    items.insert(1, InputItem(Path("rows.jsonl"), Path("x"), "row 3 (id=x): audio file not found"))
    model = CountingModel(tiny_model, fail_on=2, fail_with=RuntimeError("CUDA error: out of memory"))
    summary = run(model, items, tmp_path)
    assert len(model.calls) == 4  # the known-bad item never reaches the model
    assert summary.failed == [("rows.jsonl", "row 3 (id=x): audio file not found"),
                              (str(items[2].source), "RuntimeError: CUDA error: out of memory")]
    assert len(summary.done) == 3 and summary.audio_s == pytest.approx(4.5, abs=0.01)
    text = summary.describe()
    assert "3 transcribed, 0 skipped (outputs exist), 2 failed" in text
    assert f"failed: {items[2].source}: RuntimeError" in text and "failed: rows.jsonl: row 3 (id=x)" in text
    assert not any(tmp_path.glob("b.*")) and not any(tmp_path.glob("x.*"))


def test_stems_with_dots_keep_distinct_outputs(tiny_model, folder, tmp_path):
    audio = sf.read(folder / "a.wav")[0]
    for name in ("talk.part1.wav", "talk.part2.wav"):
        sf.write(tmp_path / name, audio, SAMPLE_RATE)
    items = expand_inputs([str(tmp_path / "talk.part1.wav"), str(tmp_path / "talk.part2.wav")])
    summary = runner.run(tiny_model, items, formats=("txt", "json"), output_dir=tmp_path / "out", options=FAST,
                         progress=False)
    assert len(summary.done) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "talk.part1.json", "talk.part1.txt", "talk.part2.json", "talk.part2.txt"]


def test_stdout_run_headers_and_nothing_pending(tiny_model, folder, capsys):
    items = expand_inputs([str(folder / "a.wav"), str(folder / "b.flac")])
    summary = runner.run(tiny_model, items, formats=("txt",), output_dir=None, options=FAST, progress=False)
    stdout = capsys.readouterr().out
    assert stdout.count("==> ") == 2 and f"==> {folder / 'b.flac'} <==" in stdout
    assert len(summary.done) == 2
    # Nothing to do: the model is never touched (the CLI then skips loading it).
    assert runner.pending_items(items, None, ("txt",)) == items
    assert runner.run(None, [], formats=("txt",), output_dir=None, options=FAST, progress=False).done == []


def test_parse_formats():
    assert runner.parse_formats(None) == ("txt",)
    assert runner.parse_formats(["srt,VTT", "srt", "all"]) == ("srt", "vtt", "txt", "json", "tsv")
    with pytest.raises(Exception, match="choose from"):
        runner.parse_formats(["docx"])
    for empty in ([""], [","], [" "]):  # -f "" is a usage error, not a run that writes nothing
        with pytest.raises(ovoz.ConfigError, match="names no format"):
            runner.parse_formats(empty)


def test_silence_file_gives_empty_outputs(tiny_model, tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(2 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    items = expand_inputs([str(tmp_path / "quiet.wav")])
    summary = run(tiny_model, items, tmp_path / "out")
    assert len(summary.done) == 1
    assert (tmp_path / "out" / "quiet.txt").read_text() == ""
    assert list(srt.parse((tmp_path / "out" / "quiet.srt").read_text())) == []
    assert json.loads((tmp_path / "out" / "quiet.json").read_text())["segments"] == []


def test_batch_transcription_equals_one_by_one(tiny_model, clips, tmp_path):
    """A folder of short clips is decoded in shared batches; every transcript equals the one-by-one result."""
    import numpy as np

    sources = [c["path"] for c in clips] + [str(tmp_path / "missing.wav")]
    long_audio = np.concatenate([tiny_model._decode(c["path"], None).samples for c in clips[:5]])  # ~30 s+
    sources.append(long_audio)
    options = ovoz.TranscribeOptions(max_new_tokens=6, batch_size=3)
    batch = tiny_model.transcribe_batch(sources, options=options)
    assert isinstance(batch[len(clips)], ovoz.AudioFileNotFoundError)
    for source, result in zip(sources[: len(clips)] + sources[-1:], batch[: len(clips)] + batch[-1:]):
        single = tiny_model.transcribe(source, options=options)
        assert result.text == single.text
        assert [(s.start_s, s.end_s, s.text, s.n_tokens) for s in result.segments] == [
            (s.start_s, s.end_s, s.text, s.n_tokens) for s in single.segments
        ]
        assert result.source == single.source and result.duration_s == single.duration_s


def test_the_job_s_audio_is_announced_to_the_model(tmp_path, clip_22k):
    """A transcriber told of hours of audio may compile its fused kernels (ovoz.gemma.kernels.fused.choose)."""
    import shutil

    from ovoz.io import expand_inputs

    inputs = []
    for name in ("a.wav", "b.wav"):
        shutil.copy(clip_22k, tmp_path / name)
        inputs.append(str(tmp_path / name))

    class Recorder:
        expected = None

        def expect_audio(self, seconds):
            self.expected = seconds

        def transcribe(self, source, options=None, on_text=None):
            raise RuntimeError("not needed here")

    model = Recorder()
    runner.run(model, expand_inputs(inputs), formats=("txt",), output_dir=tmp_path / "out", options=FAST,
               progress=False)
    assert model.expected == pytest.approx(2 * 4.4, abs=0.3)


class BatchingModel:
    """The tiny model's batched path, recording each ``transcribe_batch`` call; a batch holding ``poison`` with
    other inputs fails as a whole (as an untyped error inside one shared batch does), and call number
    ``interrupt_on`` raises KeyboardInterrupt."""

    def __init__(self, model, poison: str | None = None, interrupt_on: int | None = None) -> None:
        self.model, self.poison, self.interrupt_on = model, poison, interrupt_on
        self.batches: list[list[str]] = []

    def transcribe(self, source, **kwargs):
        return self.model.transcribe(source, **kwargs)

    def transcribe_batch(self, sources, **kwargs):
        self.batches.append([Path(s).name for s in sources])
        if len(self.batches) == self.interrupt_on:
            raise KeyboardInterrupt
        if self.poison in self.batches[-1]:
            if len(sources) > 1:
                raise RuntimeError("Calculated padded input size per channel: (2 x 130)")
            raise ValueError("this clip is the culprit")
        return self.model.transcribe_batch(sources, **kwargs)


def test_a_batch_failure_is_redone_one_by_one_and_blames_only_the_culprit(tiny_model, folder, tmp_path):
    items = expand_inputs([str(folder)])
    model = BatchingModel(tiny_model, poison="c.wav")
    summary = runner.run(model, items, formats=("txt",), output_dir=tmp_path, options=FAST.replace(batch_size=4),
                         progress=False)
    assert model.batches[0] == ["a.wav", "b.flac", "c.wav", "d.wav"]
    assert model.batches[1:5] == [["a.wav"], ["b.flac"], ["c.wav"], ["d.wav"]]
    assert summary.failed == [(str(folder / "c.wav"), "ValueError: this clip is the culprit")]
    assert len(summary.done) == 5 and sorted(p.name for p in tmp_path.glob("*.txt")) == [
        "a.txt", "b.txt", "d.txt"]


def test_outputs_are_written_batch_by_batch_and_progress_advances_per_input(tiny_model, folder, tmp_path,
                                                                           monkeypatch):
    """Ctrl-C during the second batch keeps the first batch's outputs; the bar moves once per input."""
    from ovoz import progress

    advanced: list[float] = []
    monkeypatch.setattr(progress.AudioProgress, "advance", lambda self, seconds: advanced.append(seconds))
    items = expand_inputs([str(folder)])
    with pytest.raises(KeyboardInterrupt):
        runner.run(BatchingModel(tiny_model, interrupt_on=2), items, formats=("txt",), output_dir=tmp_path,
                   options=FAST.replace(batch_size=2), progress=True)
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["a.txt", "b.txt"]
    assert advanced == [pytest.approx(1.5, abs=0.01)] * 2


def test_a_one_sample_clip_among_good_ones_fails_nothing(tiny_model, folder, tmp_path):
    """Shorter than the audio encoder can take: padded with silence (ovoz.audio.MIN_SAMPLES), so it and the
    eight others all succeed, even when it ends up alone in the last batch."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    audio = sf.read(folder / "a.wav", dtype="float32")[0]
    for i in range(8):
        sf.write(inputs / f"good{i}.wav", audio, SAMPLE_RATE)
    sf.write(inputs / "tiny.wav", audio[:1], SAMPLE_RATE)
    summary = runner.run(tiny_model, expand_inputs([str(inputs)]), formats=("json",), output_dir=tmp_path / "out",
                         options=FAST.replace(batch_size=8), progress=False)
    assert not summary.failed and len(summary.done) == 9
    assert json.loads((tmp_path / "out" / "tiny.json").read_text())["duration_s"] == 0.04


def test_an_unwritable_output_is_a_typed_error_and_the_others_are_written(tiny_model, folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the folder of sub/e and sub/f must go")
    items = expand_inputs([str(folder)])
    summary = runner.run(tiny_model, items, formats=("txt",), output_dir=out, options=FAST, progress=False)
    assert [source for source, _ in summary.failed] == [str(folder / "sub" / "e.wav"), str(folder / "sub" / "f.wav")]
    reason = summary.failed[0][1]
    assert reason.startswith(f"{out / 'sub' / 'e.txt'}: could not be written") and "--output-dir" in reason
    assert sorted(p.name for p in out.glob("*.txt")) == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
