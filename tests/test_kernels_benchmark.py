"""benchmarks/bench_kernels.py --smoke: every kernel, implementation and case runs and lands in the JSON record
(CPU, Triton's interpreter; the timings themselves come from the GPU box)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kernels.py"


def run_smoke(tmp_path: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # the script switches it on itself
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path), *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("kernels-*-smoke.json")
    assert f"# wrote {path}" in done.stdout
    return json.loads(path.read_text())


def test_smoke_measures_every_kernel_three_ways(tmp_path):
    record = run_smoke(tmp_path, "--no-start")
    assert {"date", "machine", "versions", "command"} <= record.keys() and record["smoke"] is True
    kernels = record["tables"]["kernels"]
    rows = kernels["rows"]
    assert all(list(row) == kernels["columns"] for row in rows)
    for kernel in ("rms_norm", "gelu_tanh_mul", "apply_rotary"):
        mine = [row for row in rows if row["kernel"] == kernel]
        assert {row["impl"] for row in mine} == {"triton", "torch.compile", "eager"}
        assert {row["case"] for row in mine} == {"decode b4", "prefill 2x10"}
    attention = [row for row in rows if row["kernel"] == "decode_attention"]
    assert {row["impl"] for row in attention} == {"triton", "eager (packed SDPA)"}
    assert {row["case"] for row in attention} == {"decode b4"}
    for row in rows:  # every implementation computed the reference's function (bfloat16 outputs)
        assert 0 < row["rel err"] < 1e-2, row
        assert row["us/call"] > 0


@pytest.mark.slow
def test_smoke_cold_and_warm_start_processes(tmp_path):
    start = run_smoke(tmp_path)["tables"]["start"]
    runs = {(row["impl"], row["run"]) for row in start["rows"]}
    assert runs == {(impl, run) for impl in ("triton", "torch.compile") for run in ("cold", "warm")}
    for row in start["rows"]:
        assert set(start["columns"]) <= row.keys() and row["cases"] > 0
        assert row["process s"] >= row["first calls s"] + row["import s"]
