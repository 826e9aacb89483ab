"""Several processes (torchrun, DDP over gloo on the CPU) train what one process trains, and resume after a crash.

All runs here use SGD: its update is linear in the gradient, so two runs whose gradients agree to float32 rounding
end with adapters that agree as closely. (Adam divides each gradient by its own running magnitude: the components
that are near zero, e.g. every lora_A at the first steps, move by a whole learning rate whichever sign the rounding
gives them, so elementwise agreement says nothing about the data or the loss.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import write_manifest

CRASH = Path(__file__).with_name("ddp_crash.py")
STEPS, SAVE_AT = 10, 5


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _args(model_dir, data, out, batch_size, *extra):
    return ["train", "--base", str(model_dir), "--data", str(data), "--output-dir", str(out),
            "--batch-size", str(batch_size), "--max-steps", str(STEPS), "--save-steps", str(SAVE_AT),
            "--optimizer", "sgd", "--learning-rate", "0.02", "--warmup", "0", "--shuffle-buffer", "8",
            "--logging-steps", "1", "--no-gradient-checkpointing", "--report-to", "none", "--no-progress-bar",
            *extra]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=_env())


def _torchrun(*args) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def _losses(folder: Path) -> dict[int, float]:
    state = json.loads((folder / "trainer_state.json").read_text())
    return {row["step"]: row["loss"] for row in state["log_history"] if "loss" in row}


def _b_norm(adapter: dict) -> float:
    """Norm of the lora_B weights: they start at zero, so this is the size of what training changed."""
    return sum(float((t ** 2).sum()) for key, t in adapter.items() if "lora_B" in key) ** 0.5


def _b_difference(a: dict, b: dict) -> float:
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a if "lora_B" in k) ** 0.5 / _b_norm(a)


@pytest.fixture(scope="module")
def corpus(uz_speech, tmp_path_factory) -> Path:
    """Eight rows (the six clips, two of them twice): at 4 examples a step a pass is 2 steps, so 10 steps make five
    passes, each shuffled on its own, and the crash at step 5 falls inside the third."""
    rows = [{**row, "id": f"row{i}", "audio": str(uz_speech["folder"] / row["audio"])}
            for i, row in enumerate(uz_speech["rows"] + uz_speech["rows"][:2])]
    return write_manifest(tmp_path_factory.mktemp("ddp") / "train8.jsonl", rows)


@pytest.fixture(scope="module")
def two_processes(tiny_model_dir, corpus, tmp_path_factory) -> Path:
    """An uninterrupted 10-step run of two processes with 2 examples each."""
    out = tmp_path_factory.mktemp("ddp") / "two"
    done = _run(_torchrun("-m", "ovoz.cli", *_args(tiny_model_dir, corpus, out, 2)))
    assert done.returncode == 0, done.stderr[-4000:]
    assert "processes: 2" in (out / "README.md").read_text(encoding="utf-8")
    return out


def test_two_processes_of_batch_2_train_what_one_process_of_batch_4_trains(tiny_model_dir, corpus, two_processes,
                                                                           tmp_path):
    """Same data, seed and global batch: the same batches reach the model, and the loss is the global batch's token
    mean however the batch is split (before ovoz passed the trainer its token count, each process' own mean was
    averaged: the lora_B weights then differed by 12% of their norm). What is left is float32 rounding of the
    other padding (a row padded to the longest of 2 or of 4 clips): 2e-5 of the norm measured, 1e-3 allowed."""
    import torch

    one = tmp_path / "one"
    done = _run([sys.executable, "-m", "ovoz.cli", *_args(tiny_model_dir, corpus, one, 4)])
    assert done.returncode == 0, done.stderr[-4000:]

    single, double = _losses(one), _losses(two_processes)
    assert set(single) == set(double) == set(range(1, STEPS + 1))
    for step in single:
        assert double[step] == pytest.approx(single[step], rel=1e-4), step
    a, b = _adapter(one), _adapter(two_processes)
    assert a.keys() == b.keys()
    assert _b_norm(a) > 0.01  # training moved the adapter: the comparison below means something
    assert _b_difference(a, b) < 1e-3
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-5, msg=key)


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_adapter(tiny_model_dir, corpus, two_processes,
                                                                       tmp_path):
    """Rank 0 is SIGKILLed right after the checkpoint at step 5 (inside a pass); ``--resume`` under torchrun then
    ends with the uninterrupted run's adapter and loss curve (measured: identical to the bit)."""
    import torch

    out = tmp_path / "crashed"
    crashed = _run(_torchrun(str(CRASH), *_args(tiny_model_dir, corpus, out, 2), "--crash-after-step", str(SAVE_AT)))
    assert crashed.returncode != 0 and f"crashing after the checkpoint at step {SAVE_AT}" in crashed.stderr
    assert (out / f"checkpoint-{SAVE_AT}" / "adapter_model.safetensors").exists()
    assert not (out / "adapter_model.safetensors").exists() and not (out / f"checkpoint-{STEPS}").exists()

    resumed = _run(_torchrun("-m", "ovoz.cli", *_args(tiny_model_dir, corpus, out, 2, "--resume")))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    expected, got = _losses(two_processes), _losses(out)
    assert set(got) == set(range(1, STEPS + 1))
    for step in range(SAVE_AT + 1, STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-6), step
    a, b = _adapter(two_processes), _adapter(out)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-7, msg=key)


def test_each_launched_process_trains_on_its_own_gpu():
    from ovoz.train.run import process_device

    assert process_device("cuda", "1", 2) == "cuda:1"  # torchrun / accelerate launch: LOCAL_RANK=1
    assert process_device("cuda", None, 2) == "cuda"  # no launcher
    assert process_device("cuda", "1", 1) == "cuda"  # one visible GPU per process (CUDA_VISIBLE_DEVICES)
    assert process_device("cuda:0", "1", 2) == "cuda:0"  # asked for by name
    assert process_device("cpu", "1", 0) == "cpu"
