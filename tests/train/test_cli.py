"""``ovoz train`` and ``ovoz merge`` through the CLI; several processes through torchrun (DDP, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _train_args(model_dir, data, out, *extra):
    return ["train", "--base", str(model_dir), "--data", str(data), "--output-dir", str(out), "--batch-size", "2",
            "--no-gradient-checkpointing", "--report-to", "none", "--no-progress-bar", "--shuffle-buffer", "0",
            "--learning-rate", "1e-2", *extra]


def test_cli_train_with_config_file_then_merge(tiny_model_dir, uz_speech, tmp_path):
    import numpy as np
    import torch

    import ovoz
    from ovoz.cli import main

    config_file = tmp_path / "my.yaml"
    config_file.write_text("max_steps: 3\nsave_steps: 100\nlora_parts: [language, audio]\n", encoding="utf-8")
    out = tmp_path / "adapter"
    assert main(_train_args(tiny_model_dir, uz_speech["train"], out, "--config", str(config_file),
                            "--max-steps", "2")) == 0
    saved = (out / "ovoz_train.yaml").read_text(encoding="utf-8")
    assert "max_steps: 2" in saved and "- audio" in saved and "embedder" not in saved

    merged = tmp_path / "merged"
    assert main(["merge", "--base", str(tiny_model_dir), "--adapter", str(out), "-o", str(merged),
                 "--dtype", "float32"]) == 0
    assert (merged / "config.json").exists() and (merged / "ovoz_merge.json").exists()
    assert not list(merged.glob("adapter_*"))
    clip = ovoz.audio.load_audio(uz_speech["folder"] / "clip0.wav")
    with_adapter = ovoz.load(tiny_model_dir, adapter=out, device="cpu", dtype="float32")
    merged_model = ovoz.load(merged, adapter=None, device="cpu", dtype="float32")
    from ovoz.gemma.generate import prepare_inputs
    from ovoz.types import SYSTEM_PROMPT, USER_PROMPT

    inputs = prepare_inputs(with_adapter.processor, [clip], SYSTEM_PROMPT, USER_PROMPT)
    with torch.no_grad():
        a = with_adapter.model(**inputs).logits
        b = merged_model.model(**inputs).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert np.isfinite(a.numpy()).all()


def test_merge_refuses_a_non_empty_output(tiny_model_dir, peft_adapter_dir, tmp_path):
    from ovoz.cli import main

    (tmp_path / "x").write_text("keep me")
    assert main(["merge", "--base", str(tiny_model_dir), "--adapter", str(peft_adapter_dir), "-o",
                 str(tmp_path)]) == 2


def test_two_cpu_processes_train_with_ddp(tiny_model_dir, uz_speech, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "ovoz.cli", *_train_args(tiny_model_dir, uz_speech["train"], out, "--max-steps", "2",
                                              "--logging-steps", "1", "--eval-data", str(uz_speech["dev"]))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (out / "adapter_model.safetensors").exists()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text()) if (out / "checkpoint-2").exists() \
        else None
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "processes: 2" in card
    assert state is None or state["global_step"] == 2
