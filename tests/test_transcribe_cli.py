"""``ovoz transcribe`` in process (fast) and once as the installed console script, on the tiny model folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt

from ovoz.audio import load_audio
from ovoz.cli import EXIT_FAILED_INPUTS, EXIT_MODEL, EXIT_OK, EXIT_USAGE, main
from ovoz.types import OUTPUT_FORMATS, SAMPLE_RATE


@pytest.fixture(scope="module")
def inputs(clips, tmp_path_factory) -> Path:
    """good.wav (2 s), a folder holding two more clips, and corrupt.wav (a WAV header over garbage)."""
    root = tmp_path_factory.mktemp("cli")
    audio = load_audio(clips[0]["path"])
    sf.write(root / "good.wav", audio[: 2 * SAMPLE_RATE], SAMPLE_RATE)
    (root / "folder" / "deep").mkdir(parents=True)
    sf.write(root / "folder" / "one.flac", audio[SAMPLE_RATE: 3 * SAMPLE_RATE], SAMPLE_RATE)
    sf.write(root / "folder" / "deep" / "two.wav", audio[3 * SAMPLE_RATE: 5 * SAMPLE_RATE], SAMPLE_RATE)
    (root / "folder" / "readme.md").write_text("not audio")
    header = (root / "good.wav").read_bytes()[:44]
    (root / "corrupt.wav").write_bytes(header + np.random.default_rng(0).bytes(200))
    return root


@pytest.fixture
def ovoz_args(tiny_model_dir):
    """``ovoz transcribe`` arguments for the tiny base in float32 on the CPU, short outputs."""
    def make(*args: str, adapter: str | None = None) -> list[str]:
        model = ["--base", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32", "--max-new-tokens", "4"]
        model += ["--adapter", adapter] if adapter else ["--no-adapter"]
        return ["transcribe", *map(str, args), *model]
    return make


def expected_txt(tiny_model, path) -> str:
    result = tiny_model.transcribe(path, max_new_tokens=4)
    return "".join(" ".join(s.text.split()) + "\n" for s in result.segments if s.text.strip())


def test_txt_to_stdout(tiny_model, inputs, ovoz_args, capsys):
    assert main(ovoz_args(inputs / "good.wav")) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == expected_txt(tiny_model, inputs / "good.wav") and out.strip()
    assert "1 transcribed, 0 skipped (outputs exist), 0 failed" in err


def test_all_formats_for_files_and_folders(inputs, ovoz_args, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(ovoz_args(inputs / "good.wav", inputs / "folder", "-f", "all", "-o", out_dir)) == EXIT_OK
    assert capsys.readouterr().out == ""
    stems = ["good", "one", "deep/two"]
    assert sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.*")) == sorted(
        f"{stem}.{fmt}" for stem in stems for fmt in OUTPUT_FORMATS)
    for stem in stems:
        document = json.loads((out_dir / f"{stem}.json").read_text(encoding="utf-8"))
        assert document["duration_s"] == pytest.approx(2.0, abs=0.01) and document["segments"]
        assert document["options"]["max_new_tokens"] == 4 and document["model"]["adapter"] is None
        subs = list(srt.parse((out_dir / f"{stem}.srt").read_text(encoding="utf-8")))
        cues = webvtt.read(str(out_dir / f"{stem}.vtt"))
        assert len(subs) == len(cues) >= 1
        assert all(0 <= s.start.total_seconds() < s.end.total_seconds() <= 2.0 for s in subs)
        header, *rows = (out_dir / f"{stem}.tsv").read_text(encoding="utf-8").splitlines()
        assert header == "start\tend\ttext" and all(len(r.split("\t")) == 3 for r in rows)
    # A second run finds every output and skips them all, without loading the model at all.
    args = ovoz_args(inputs / "good.wav", inputs / "folder", "-f", "all", "-o", out_dir)
    args[args.index("--base") + 1] = str(tmp_path / "no-model-here")
    assert main(args) == EXIT_OK
    assert "0 transcribed, 3 skipped" in capsys.readouterr().err


def test_corrupt_file_among_good_ones(inputs, ovoz_args, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code = main(ovoz_args(inputs / "good.wav", inputs / "corrupt.wav", inputs / "missing.wav", inputs / "folder",
                          "-f", "txt,srt", "-o", out_dir))
    assert code == EXIT_FAILED_INPUTS
    assert sorted(p.name for p in out_dir.rglob("*.*")) == ["good.srt", "good.txt", "one.srt", "one.txt",
                                                            "two.srt", "two.txt"]
    err = capsys.readouterr().err
    assert "3 transcribed, 0 skipped (outputs exist), 2 failed" in err
    assert f"failed: {inputs / 'corrupt.wav'}" in err and f"failed: {inputs / 'missing.wav'}" in err
    assert "Traceback" not in err


def test_manifest_input(inputs, ovoz_args, tmp_path, capsys):
    manifest = tmp_path / "set.jsonl"
    rows = [{"id": "spk/utt-1", "audio": str(inputs / "good.wav"), "text": "ref"},
            {"id": "utt-2", "audio": str(inputs / "folder" / "one.flac")},
            {"id": "utt-3", "audio": "nowhere.wav"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(ovoz_args(manifest, "-o", tmp_path / "out")) == EXIT_FAILED_INPUTS
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["spk_utt-1.txt", "utt-2.txt"]
    err = capsys.readouterr().err
    assert f"failed: {manifest}: row 3 (id=utt-3): audio file not found" in err


def test_adapter_from_a_local_folder(tiny_model_dir, peft_adapter_dir, inputs, ovoz_args, capsys):
    assert main(ovoz_args(inputs / "good.wav", "-f", "json")) == EXIT_OK
    base = json.loads(capsys.readouterr().out)
    assert main(ovoz_args(inputs / "good.wav", "-f", "json", adapter=str(peft_adapter_dir))) == EXIT_OK
    adapted = json.loads(capsys.readouterr().out)
    assert base["model"]["adapter"] is None and adapted["model"]["adapter"] == str(peft_adapter_dir)
    assert adapted["text"] != base["text"]


def test_stream_prints_text_as_it_is_generated(tiny_model, inputs, ovoz_args, capsys):
    assert main(ovoz_args(inputs / "good.wav", "--stream")) == EXIT_OK
    out = capsys.readouterr().out
    assert out.strip() == tiny_model.transcribe(inputs / "good.wav", max_new_tokens=4).text
    assert out.count(out.strip()) == 1  # streamed once, not printed again as txt
    assert main(ovoz_args(inputs / "good.wav", "--stream", "-f", "srt")) == EXIT_USAGE
    assert "--output-dir" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing-folder", "hub-offline", "missing-adapter"])
def test_model_not_found_gives_one_clear_message(case, inputs, ovoz_args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    args = ovoz_args(inputs / "good.wav")
    if case == "missing-folder":
        args[args.index("--base") + 1] = str(tmp_path / "no" / "such" / "model")
    elif case == "hub-offline":
        args[args.index("--base") + 1] = "nobody-here/no-such-model"
        args.append("--local-files-only")
    else:
        args[args.index("--no-adapter")] = "--adapter=" + str(tmp_path / "no-adapter")
    assert main(args) == EXIT_MODEL
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith("ovoz: error: --") and err.count("ovoz: error:") == 1
    assert ("nobody-here/no-such-model" in err and "--base /path/to/folder" in err) if case == "hub-offline" else \
        "no such folder" in err


def test_usage_errors(inputs, ovoz_args, tmp_path, capsys):
    assert main(ovoz_args(inputs / "good.wav", "-f", "docx")) == EXIT_USAGE
    assert "choose from txt" in capsys.readouterr().err
    assert main(ovoz_args(inputs / "good.wav", "-f", "")) == EXIT_USAGE  # not a run that writes nothing
    assert "names no format" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(ovoz_args(tmp_path / "empty")) == EXIT_USAGE
    assert "no audio or video files" in capsys.readouterr().err
    assert main(ovoz_args(inputs / "good.wav", "--4bit")) == EXIT_USAGE
    assert "CUDA" in capsys.readouterr().err


def test_console_script_end_to_end(inputs, tmp_path):
    """The installed ``ovoz`` command: make a model folder, transcribe a good and a corrupt file."""
    exe = shutil.which("ovoz") or str(Path(sys.executable).with_name("ovoz"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    made = subprocess.run([exe, "make-test-model", str(tmp_path / "model")], check=False, capture_output=True,
                          text=True, env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "model" / "config.json").exists()
    done = subprocess.run(
        [exe, "transcribe", str(inputs / "good.wav"), str(inputs / "corrupt.wav"), "--base", str(tmp_path / "model"),
         "--no-adapter", "--device", "cpu", "--max-new-tokens", "4", "-f", "srt,json", "-o", str(tmp_path / "out")],
        check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == EXIT_FAILED_INPUTS, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert f"ERROR ovoz.runner: {inputs / 'corrupt.wav'}" in done.stderr  # logged when it happens
    assert "1 transcribed, 0 skipped (outputs exist), 1 failed" in done.stderr
    assert list(srt.parse((tmp_path / "out" / "good.srt").read_text(encoding="utf-8")))
    assert json.loads((tmp_path / "out" / "good.json").read_text(encoding="utf-8"))["model"]["dtype"] == "bfloat16"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.json", "good.srt"]
