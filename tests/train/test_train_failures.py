"""``ovoz train`` with nothing to train on, or nowhere to write: one typed line each, before TRL starts."""

from __future__ import annotations

import pytest
from train_helpers import write_manifest

from ovoz.cli import EXIT_USAGE, main


def _args(model_dir, data, out, *extra):
    return ["train", "--base", str(model_dir), "--data", str(data), "--output-dir", str(out), "--batch-size", "1",
            "--max-steps", "1", "--no-gradient-checkpointing", "--report-to", "none", "--no-progress-bar",
            "--shuffle-buffer", "0", *extra]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", ["empty-manifest", "all-rows-bad", "all-texts-emptied"])
def test_nothing_to_train_on_is_a_typed_error(case, tiny_model_dir, uz_speech, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    extra: tuple[str, ...] = ()
    if case == "empty-manifest":
        data.write_text("")
        expected = "it holds no rows"
    elif case == "all-rows-bad":
        write_manifest(data, [{"id": "x", "audio": str(tmp_path / "gone.wav"), "text": "salom"},
                              {"id": "y", "audio": str(uz_speech["folder"] / "clip0.wav"), "text": ""}])
        expected = "2 unusable rows"
    else:
        write_manifest(data, [{"id": "x", "audio": str(uz_speech["folder"] / "clip0.wav"), "text": "?!"}])
        extra = ("--normalize-text", "normalized")
        expected = "--normalize-text normalized emptied every transcript"
    assert main(_args(tiny_model_dir, data, tmp_path / "out", *extra)) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"ovoz: error: --data {data}: nothing to train on" in err and expected in err
    assert "Traceback" not in err and "StopIteration" not in err


def test_an_output_folder_that_is_a_file(tiny_model_dir, uz_speech, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    assert main(_args(tiny_model_dir, uz_speech["train"], tmp_path / "taken")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"ovoz: error: --output-dir {tmp_path / 'taken'}: is a file" in err
    assert (tmp_path / "taken").read_text() == "a file"
