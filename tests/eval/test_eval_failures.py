"""Evaluation fails early and alone: the report folder and every adapter are checked before decoding, one bad
utterance never fails its batch, and a report that cannot be written leaves no summary.json behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ovoz.cli import EXIT_MODEL, EXIT_USAGE, main
from ovoz.errors import AdapterError, OutputWriteError
from ovoz.types import SAMPLE_RATE, TranscribeOptions

FAST = TranscribeOptions(max_new_tokens=4, batch_size=4)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    rows = []
    for i in range(5):
        t = np.arange(int((1 + 0.2 * i) * SAMPLE_RATE)) / SAMPLE_RATE
        sf.write(folder / f"u{i}.wav", (0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), SAMPLE_RATE)
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": "salom dunyo"})
    path = folder / "set.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


class PoisonedBatches:
    """The tiny model, except that a shared batch holding ``poison`` fails as a whole (an untyped error, as a
    torch error inside one batch is); alone, ``poison`` fails and the others succeed."""

    def __init__(self, model, poison: str) -> None:
        self.model, self.poison, self.calls = model, poison, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def transcribe_batch(self, sources, **kwargs):
        names = [Path(s).name for s in sources]
        self.calls.append(names)
        if self.poison in names:
            raise RuntimeError("Kernel size can't be greater than actual input size")
        return self.model.transcribe_batch(sources, **kwargs)


def test_one_bad_utterance_never_fails_its_batch(tiny_model, manifest):
    from ovoz.eval import read_corpus, transcribe_utterances

    utterances, _ = read_corpus(manifest)
    model = PoisonedBatches(tiny_model, poison="u2.wav")
    hypotheses = transcribe_utterances(model, utterances, FAST, progress=False)
    assert hypotheses["u2"].error == "u2: RuntimeError: Kernel size can't be greater than actual input size"
    expected = transcribe_utterances(tiny_model, utterances, FAST, progress=False)
    for name in ("u0", "u1", "u3", "u4"):
        assert hypotheses[name].error is None and hypotheses[name].text == expected[name].text


def test_a_corrupt_compare_adapter_fails_before_any_decoding(tiny_model, peft_adapter_dir, manifest, tmp_path):
    from ovoz.eval import ModelSpec, evaluate, read_corpus

    corrupt = tmp_path / "corrupt"
    shutil.copytree(peft_adapter_dir, corrupt)
    weights = corrupt / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    utterances, _ = read_corpus(manifest)
    report = tmp_path / "report"
    with pytest.raises(AdapterError, match="adapter weights cannot be read"):
        evaluate(tiny_model, [ModelSpec("base"), ModelSpec("good", str(peft_adapter_dir)), ModelSpec("bad", str(corrupt))],
                 utterances, report, options=FAST, progress=False)
    assert not (report / "hypotheses.jsonl").exists() and not list(report.glob("*.tsv"))  # nothing was decoded


def test_an_adapter_of_another_base_is_found_before_decoding(tiny_model, manifest, tmp_path):
    """The shapes are checked against the loaded base up front, as ``with_adapter`` would find them later."""
    from ovoz.eval import ModelSpec, evaluate, read_corpus
    from ovoz.gemma.testing import build_random_model, build_tokenizer, model_config, save_adapter

    config = model_config(build_tokenizer(), "tiny")
    config.text_config.hidden_size = 96
    build_random_model(config, seed=3).save_pretrained(tmp_path / "other")
    for file in Path(tiny_model.info.base).iterdir():
        if not (tmp_path / "other" / file.name).exists():
            shutil.copy(file, tmp_path / "other" / file.name)
    adapter = save_adapter(tmp_path / "other", tmp_path / "adapter")
    utterances, _ = read_corpus(manifest)
    with pytest.raises(AdapterError, match="trained on another base model"):
        evaluate(tiny_model, [ModelSpec("base"), ModelSpec("other", str(adapter))], utterances, tmp_path / "report",
                 options=FAST, progress=False)
    assert not list((tmp_path / "report").glob("*.tsv"))


def test_report_folder_and_adapters_are_checked_before_the_model_loads(manifest, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "taken").write_text("a file")
    # The default base is not reachable offline: these exit with their own error, not the hub's.
    assert main(["eval", str(manifest), "-o", str(tmp_path / "taken")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"ovoz: error: --output-dir {tmp_path / 'taken'}: is a file") and "hub" not in err.lower()
    (tmp_path / "empty-adapter").mkdir()
    assert main(["eval", str(manifest), "-o", str(tmp_path / "r"), "--no-adapter", "--compare",
                 f"x={tmp_path / 'empty-adapter'}"]) == EXIT_MODEL
    err = capsys.readouterr().err
    assert "no adapter_config.json" in err and str(tmp_path / "empty-adapter") in err and "cache" not in err


def test_a_report_that_cannot_be_written_leaves_no_summary(tiny_model, manifest, tmp_path):
    from ovoz.eval import ModelSpec, evaluate, read_corpus

    utterances, _ = read_corpus(manifest)
    report = tmp_path / "report"
    (report / "report.html").mkdir(parents=True)  # the last file before summary.json cannot replace a folder
    with pytest.raises(OutputWriteError, match="report could not be written") as caught:
        evaluate(tiny_model, [ModelSpec("base")], utterances, report, options=FAST, progress=False)
    assert "report.html" in str(caught.value)
    assert not (report / "summary.json").exists()
    assert not [p for p in report.iterdir() if p.name.endswith(".part")]
    shutil.rmtree(report / "report.html")
    result = evaluate(tiny_model, [ModelSpec("base")], utterances, report, options=FAST, progress=False)
    assert json.loads((report / "summary.json").read_text())["models"] and result.models[0].failed == []
    with pytest.raises(OutputWriteError, match="report_dir="):  # the API names its own argument
        evaluate(tiny_model, [ModelSpec("base")], utterances, report / "summary.json", options=FAST, progress=False)
