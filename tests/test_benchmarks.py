"""The training benchmarks' code paths run (tiny model, CPU); the figures themselves come from the GPU box."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str, tmp_path: Path, clips: list[dict] | None = None) -> str:
    env = {**os.environ, "OVOZ_BENCH_SMOKE": "1", "HF_HUB_OFFLINE": "1"}
    if clips:  # the real clips the suite found (the fixture skips the test without them)
        env["OVOZ_SHARED_CLIPS"] = str(Path(clips[0]["path"]).parent)
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_train_step_variants(tmp_path):
    out = run("train_step.py", "--variants", "plain,ovoz+ckpt,ovoz+ple,ovoz+nocut", tmp_path=tmp_path)
    assert "# losses agree: True" in out
    for name in ("plain", "ovoz+ckpt", "ovoz+ple", "ovoz+nocut"):
        assert f"| {name} " in out


def test_train_run_trains_and_stock_peft_loads_the_adapter(tmp_path, clips):
    out = run("train_run.py", "--compile-layers", "off", "--work", str(tmp_path / "work"), tmp_path=tmp_path,
              clips=clips)
    row = next(line for line in out.splitlines() if line.startswith("| transformers"))
    assert "audio tower" in row and row.rstrip(" |").endswith("yes")


def test_train_run_cuts_clips_and_transcripts_to_the_step_benchmarks_shape(tmp_path, clips):
    import json

    import soundfile

    out = run("train_run.py", "--compile-layers", "off", "--gradient-checkpointing", "off", "--clip-seconds", "3",
              "--text-tokens", "40", "--skip-load-check", "--work", str(tmp_path / "work"), tmp_path=tmp_path,
              clips=clips)
    assert "gradient_checkpointing off, clips 3 s, transcripts cut to 40 tokens" in out
    rows = [json.loads(line) for line in (tmp_path / "work" / "corpus.jsonl").read_text().splitlines()]
    assert rows and all(len(row["text"]) <= 40 for row in rows) and any(len(row["text"]) == 40 for row in rows)
    assert {soundfile.info(row["audio"]).duration for row in rows} == {3.0}


def test_compare_adapters_tells_layouts_apart(tiny_model_dir, tmp_path):
    from ovoz.gemma.testing import save_adapter

    first = save_adapter(tiny_model_dir, tmp_path / "first", seed=1)
    second = save_adapter(tiny_model_dir, tmp_path / "second", seed=2)  # other weights, same layout
    unsloth = save_adapter(tiny_model_dir, tmp_path / "unsloth", style="unsloth", seed=1)

    def compare(a: Path, b: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(BENCHMARKS / "compare_adapters.py"), str(a), str(b)],
                              capture_output=True, text=True, timeout=120, check=False)

    same = compare(first, second)
    assert same.returncode == 0 and same.stdout.startswith("same layout: "), same.stdout + same.stderr
    differ = compare(first, unsloth)
    assert differ.returncode == 1
    assert "target_modules: " in differ.stdout and "task_type: None vs 'CAUSAL_LM'" in differ.stdout


@pytest.mark.slow  # about a minute: four torchrun launches (tests/train/test_ddp.py covers the same runs by default)
def test_ddp_scaling_runs_one_and_two_processes_and_compares_their_adapters(tmp_path, clips, monkeypatch):
    monkeypatch.setenv("OVOZ_RESULTS_DIR", str(tmp_path / "results"))
    out = run("ddp_scaling.py", "--work", str(tmp_path / "work"), tmp_path=tmp_path, clips=clips)
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
    assert rows[:3] == ["processes", "1", "2"]  # the scaling table: one and two processes
    agreement = next(line for line in out.splitlines() if line.startswith("| 1 x 4 vs 2 x 2"))
    assert agreement.rstrip(" |").endswith("yes")
    assert len(list((tmp_path / "results").glob("ddp_*-smoke-*.json"))) == 2
