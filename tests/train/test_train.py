"""End-to-end training on the tiny model (CPU) with synthetic Uzbek speech."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from train_helpers import losses, tiny_config, write_manifest


@pytest.fixture(scope="module")
def two_step_run(tiny_model_dir, uz_speech, tmp_path_factory):
    """A 2-step run with evaluation and TensorBoard, shared by the output checks."""
    from ovoz.train import train

    out = tmp_path_factory.mktemp("run") / "out"
    config = tiny_config(tiny_model_dir, uz_speech["train"], out, eval_data=str(uz_speech["dev"]),
                         report_to=["tensorboard"], learning_rate=5e-3, save_steps=1)
    return train(config)


def test_two_step_run_writes_adapter_config_card_and_logs(two_step_run):
    out = two_step_run.output_dir
    assert two_step_run.global_step == 2
    assert len(losses(two_step_run)) == 2 and all(np.isfinite(list(losses(two_step_run).values())))
    for name in ("adapter_config.json", "adapter_model.safetensors", "ovoz_train.yaml", "README.md",
                 "data_report.json", "checkpoint-1", "checkpoint-2"):
        assert (out / name).exists(), name
    assert list((out / "runs").rglob("events.out.tfevents.*"))  # TensorBoard
    from ovoz.train import resolve_config

    saved = resolve_config(out / "ovoz_train.yaml")
    assert saved.max_steps == 2 and saved.optimizer == "adamw_torch"  # what actually ran on the CPU
    (evaluation,) = two_step_run.evaluation
    assert evaluation["step"] == 2 and 0 <= evaluation["eval_wer"] and evaluation["eval_n_clips"] == 2
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "library_name: peft" in card and "| lora_r | `8` |" in card and "| 2 |" in card
    report = json.loads((out / "data_report.json").read_text(encoding="utf-8"))
    assert report["n_examples"] == 4 and report["n_broken_audio"] == 0


def test_saved_adapter_loads_in_ovoz_and_plain_peft_and_changes_outputs(two_step_run, tiny_model_dir, uz_speech):
    import torch
    from peft import PeftModel
    from transformers import Gemma4ForConditionalGeneration

    import ovoz
    from ovoz.gemma.adapter import inspect_adapter
    from ovoz.gemma.generate import prepare_inputs
    from ovoz.types import SYSTEM_PROMPT, USER_PROMPT

    out = two_step_run.output_dir
    info = inspect_adapter(out)
    assert info.parts["language tower"] > 0 and info.parts["audio tower"] > 0 and info.parts["audio embedder"] > 0
    tuned = ovoz.load(tiny_model_dir, adapter=out, device="cpu", dtype="float32")
    base = ovoz.load(tiny_model_dir, adapter=None, device="cpu", dtype="float32")
    clip = ovoz.audio.load_audio(uz_speech["folder"] / "clip0.wav")
    inputs = prepare_inputs(tuned.processor, [clip], SYSTEM_PROMPT, USER_PROMPT)
    with torch.no_grad():
        tuned_logits = tuned.model(**inputs).logits
        base_logits = base.model(**inputs).logits
        plain = PeftModel.from_pretrained(
            Gemma4ForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32), str(out)).eval()
        plain_logits = plain(**inputs).logits
    assert not torch.allclose(tuned_logits, base_logits, atol=1e-4)
    torch.testing.assert_close(plain_logits, tuned_logits, rtol=1e-4, atol=1e-4)


def test_resume_continues_with_the_same_data_and_loss_curve(tiny_model_dir, uz_speech, tmp_path):
    from ovoz.train import train

    common = dict(max_steps=4, save_steps=2, shuffle_buffer=4, learning_rate=5e-3, batch_size=2)
    straight = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "a", **common))
    crashed = tmp_path / "b"
    train(tiny_config(tiny_model_dir, uz_speech["train"], crashed, **common))
    shutil.rmtree(crashed / "checkpoint-4")  # as if the run had died after the checkpoint at step 2
    (crashed / "adapter_model.safetensors").unlink()
    resumed = train(tiny_config(tiny_model_dir, uz_speech["train"], crashed, resume=True, **common))
    assert resumed.global_step == 4
    expected, got = losses(straight), losses(resumed)
    assert set(got) == {1, 2, 3, 4}  # steps 1-2 come from the checkpoint's history
    for step in (3, 4):
        assert got[step] == pytest.approx(expected[step], rel=1e-5), step


def test_loss_falls_on_a_small_repeated_set(tiny_model_dir, uz_speech, tmp_path):
    from ovoz.train import train

    result = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "out", max_steps=30,
                               learning_rate=1e-2, batch_size=4, warmup=0.1, save_steps=1000))
    curve = [loss for _, loss in sorted(losses(result).items())]
    assert len(curve) == 30
    assert np.mean(curve[-5:]) < 0.7 * np.mean(curve[:5]), curve


@pytest.mark.parametrize("max_steps", [None, 1], ids=["epoch", "max_steps"])
def test_bad_manifest_rows_are_reported_one_by_one_and_training_goes_on(tiny_model_dir, uz_speech, tmp_path,
                                                                           caplog, max_steps):
    """With epochs, a counting pass reports every bad row of the corpus; with --max-steps (no counting pass), the
    rows the run read."""
    from ovoz.train import train

    folder = uz_speech["folder"]
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    rows = [
        {"id": "good0", "audio": str(folder / "clip0.wav"), "text": "Salom dunyo"},
        {"id": "missing", "audio": str(folder / "nope.wav"), "text": "yo'q"},
        {"id": "empty", "audio": str(folder / "clip1.wav"), "text": "   "},
        {"id": "wrongtype", "audio": str(folder / "clip2.wav"), "text": 42},
        {"id": "broken", "audio": str(tmp_path / "broken.wav"), "text": "buzilgan"},
        {"id": "good1", "audio": str(folder / "clip3.wav"), "text": "Toshkent katta shahar"},
    ]
    manifest = write_manifest(tmp_path / "bad.jsonl", rows)
    with manifest.open("a", encoding="utf-8") as f:
        f.write("{not json\n")
    config = tiny_config(tiny_model_dir, manifest, tmp_path / "out", max_steps=max_steps, batch_size=2)
    with caplog.at_level("WARNING"):
        result = train(config)
    assert result.global_step == 1  # 2 usable rows, one pass, batch 2
    report = json.loads((tmp_path / "out" / "data_report.json").read_text(encoding="utf-8"))
    bad = {row["row"]: row["reason"] for row in report["bad_rows"]}
    assert report["n_bad_rows"] == len(report["bad_rows"]) == len(bad)  # each once
    if max_steps is None:
        assert set(bad) == {2, 3, 4, 7}  # missing file, empty text, wrong type, invalid JSON: by line number
    else:  # the batch needed rows 1-6; whether line 7 was read depends on how far the loader looked ahead
        assert {2, 3, 4} <= set(bad) <= {2, 3, 4, 7}
    assert "not found" in bad[2] and "empty" in bad[3] and "int" in bad[4]
    assert report["n_broken_audio"] == 1 and report["dropped"][0]["id"] == "broken"
    assert report["n_examples"] == 2
    logged = caplog.text
    for needle in ("row 2", "row 3", "row 4", "row 7", "example broken dropped"):
        assert needle in logged, needle


def test_a_manifest_without_usable_rows_stops_with_an_error(tiny_model_dir, uz_speech, tmp_path):
    from ovoz.errors import ManifestError
    from ovoz.train import train

    manifest = write_manifest(tmp_path / "none.jsonl", [{"audio": "nope.wav", "text": "x"}])
    with pytest.raises(ManifestError, match="no usable rows"):
        train(tiny_config(tiny_model_dir, manifest, tmp_path / "out", max_steps=None))


def test_continue_training_an_existing_unsloth_style_adapter(tiny_model_dir, unsloth_adapter_dir, uz_speech,
                                                             tmp_path):
    from ovoz.gemma.adapter import inspect_adapter
    from ovoz.train import train

    result = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "out", adapter=str(unsloth_adapter_dir)))
    assert result.global_step == 2
    before, after = inspect_adapter(unsloth_adapter_dir), inspect_adapter(tmp_path / "out")
    assert after.modules == before.modules and after.rank == before.rank
    saved = json.loads((tmp_path / "out" / "adapter_config.json").read_text(encoding="utf-8"))
    assert isinstance(saved["target_modules"], str)  # a regex stock PEFT accepts
    assert saved["task_type"] is None  # as the transformers backend writes a new adapter (Unsloth: CAUSAL_LM)


def test_backend_choice_on_the_cpu():
    from ovoz.errors import ConfigError
    from ovoz.gemma.training import resolve_backend

    assert resolve_backend("auto", "cpu") == "transformers"
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_backend("unsloth", "cpu")


@pytest.mark.parametrize(("setting", "exported", "expected"), [
    ("auto", None, "1"), ("off", None, "1"), ("on", None, None), ("auto", "0", "0"), ("on", "1", "1"),
])
def test_compile_layers_reaches_unsloth_through_its_environment_variable(monkeypatch, setting, exported, expected):
    import sys

    from ovoz.gemma.training import UNSLOTH_COMPILE_ENV, set_unsloth_compile

    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    monkeypatch.setenv(UNSLOTH_COMPILE_ENV, "recorded, so that monkeypatch restores the variable afterwards")
    if exported is None:
        monkeypatch.delenv(UNSLOTH_COMPILE_ENV)
    else:
        monkeypatch.setenv(UNSLOTH_COMPILE_ENV, exported)
    set_unsloth_compile(setting)
    assert os.environ.get(UNSLOTH_COMPILE_ENV) == expected


def test_compile_layers_cannot_reach_an_unsloth_imported_earlier(monkeypatch, caplog):
    import sys
    import types

    from ovoz.gemma.training import UNSLOTH_COMPILE_ENV, set_unsloth_compile

    monkeypatch.setenv(UNSLOTH_COMPILE_ENV, "recorded")
    monkeypatch.delenv(UNSLOTH_COMPILE_ENV)
    monkeypatch.setitem(sys.modules, "unsloth", types.ModuleType("unsloth"))
    with caplog.at_level("WARNING", logger="ovoz.gemma.training"):
        set_unsloth_compile("auto")
    assert UNSLOTH_COMPILE_ENV not in os.environ
    assert f"Export {UNSLOTH_COMPILE_ENV}=1" in caplog.text


@pytest.mark.parametrize("compile_layers", ["off", pytest.param("on", marks=pytest.mark.slow)])
def test_run_with_the_per_layer_table_on_the_cpu_and_compiled_layers_matches_the_plain_run(
        tiny_model_dir, uz_speech, tmp_path, monkeypatch, compile_layers):
    """The GPU defaults (table on the CPU, compiled layers, checkpointing) through the whole trainer: same losses,
    evaluation and saving work. The text layers compile with aot_eager here: inductor takes minutes on a CPU, and
    aot_eager's dynamic-shape backward of the audio layer fails on a view (inductor's does not: the GPU run of
    benchmarks/train_run.py compiled both towers over clips of changing length)."""
    from ovoz.gemma.kernels import compiled_layers as compiled
    from ovoz.train import train

    monkeypatch.setattr(compiled, "LAYER_CLASSES", ("Gemma4TextDecoderLayer",))
    real_compile = compiled.compile_layers
    monkeypatch.setattr(compiled, "compile_layers", lambda model, **kw: real_compile(model, backend="aot_eager"))
    common = dict(max_steps=2, learning_rate=5e-3, eval_data=str(uz_speech["dev"]), eval_limit=2, eval_steps=2)
    plain = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "a", **common))
    gpu_like = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "b", per_layer_embeddings="cpu",
                                 compile_layers=compile_layers, gradient_checkpointing=True, **common))
    for step, loss in losses(plain).items():
        assert losses(gpu_like)[step] == pytest.approx(loss, rel=1e-4), step
    assert gpu_like.evaluation and gpu_like.evaluation[-1]["eval_wer"] == pytest.approx(
        plain.evaluation[-1]["eval_wer"])
    assert (tmp_path / "b" / "adapter_model.safetensors").exists()


def test_run_with_a_dataloader_worker_trains_and_saves(tiny_model_dir, uz_speech, tmp_path):
    """Examples built in a worker process: their counts stay there; the run must still finish and save."""
    from ovoz.train import train

    result = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "out", dataloader_workers=1))
    assert result.global_step == 2
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
    report = json.loads((tmp_path / "out" / "data_report.json").read_text())
    assert report["n_examples"] is None and report["dropped"] is None  # not counted, rather than a wrong 0


def test_device_features_train_like_the_processor_s(tiny_model_dir, uz_speech, tmp_path):
    """device_features=on (the GPU default, here on the CPU): the same run, losses within the features' 1e-3."""
    from ovoz.train import train

    common = dict(max_steps=2, learning_rate=5e-3, eval_data=str(uz_speech["dev"]), eval_limit=2, eval_steps=2)
    on_cpu = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "a", device_features="off", **common))
    on_device = train(tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "b", device_features="on",
                                  **common))
    for step, loss in losses(on_cpu).items():
        assert losses(on_device)[step] == pytest.approx(loss, rel=1e-3), step
    assert on_device.evaluation[-1]["eval_wer"] == pytest.approx(on_cpu.evaluation[-1]["eval_wer"])


def test_device_features_setting(tiny_model_dir):
    from ovoz.gemma.processor import load_processor
    from ovoz.train.run import use_device_features

    processor = load_processor(tiny_model_dir)
    assert use_device_features("auto", "cuda", processor)
    assert not use_device_features("auto", "cpu", processor)
    assert use_device_features("on", "cpu", processor)
    assert not use_device_features("off", "cuda", processor)
    processor.feature_extractor.dither = 0.5  # random dither: only the processor adds it
    try:
        assert not use_device_features("on", "cuda", processor)
    finally:
        processor.feature_extractor.dither = 0.0
