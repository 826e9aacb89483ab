"""benchmarks/serve.py --smoke: the server benchmark's code path on the CPU (the figures come from the GPU box)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "serve.py"


def test_serve_benchmark_smoke_prints_a_table_and_writes_json(clips, tmp_path):
    env = {**os.environ, "OVOZ_BENCH_SMOKE": "1", "HF_HUB_OFFLINE": "1",
           "OVOZ_SHARED_CLIPS": str(Path(clips[0]["path"]).parent),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(BENCHMARK), "--smoke", "--results-dir", str(tmp_path / "results")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = (tmp_path / "results").glob("serve-smoke-*.json")
    record = json.loads(path.read_text())
    assert {"date", "machine", "versions", "command", "rows"} <= set(record)
    assert record["versions"]["torch"] and "--smoke" in record["command"]
    header = next(line for line in done.stdout.splitlines() if line.startswith("| mode"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert all(list(row) == columns for row in record["rows"])
    modes = [row["mode"] for row in record["rows"]]
    assert modes == ["offline", "server", "offline", "server", "offline long alone", "server mix"]
    for row in record["rows"]:
        assert row["RTFx"] > 0 and row["requests"] >= 1
    server_rows = [row for row in record["rows"] if row["mode"].startswith("server")]
    assert all(row["p50 s"] <= row["p99 s"] for row in server_rows)
    assert record["rows"][-1]["long s"] > 0
