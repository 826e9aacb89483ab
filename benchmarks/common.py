"""Shared helpers for the GPU benchmarks: real clips, the full-size random-weight E4B, timing and memory."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = Path(os.environ.get("OVOZ_SHARED_CLIPS", ROOT / "shared" / "data" / "uz_clips"))
if not CLIPS.exists():
    CLIPS = ROOT.parent / "shared" / "data" / "uz_clips"


def real_clips() -> list[np.ndarray]:
    """The real Uzbek recordings at 16 kHz (from ../shared/data/uz_clips or $OVOZ_SHARED_CLIPS)."""
    import ovoz

    rows = [json.loads(line) for line in (CLIPS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [ovoz.load_audio(CLIPS / row["path"]) for row in rows]


def clip_of(seconds: float, clips: list[np.ndarray]) -> np.ndarray:
    """``seconds`` of real speech: the clips joined (with 0.3 s pauses), cut to length."""
    pause = np.zeros(4800, np.float32)
    joined = np.concatenate([piece for clip in clips for piece in (clip, pause)])
    while len(joined) < seconds * 16000:
        joined = np.concatenate([joined, joined])
    return joined[: int(seconds * 16000)].copy()


SMOKE = os.environ.get("OVOZ_BENCH_SMOKE") == "1"
"""OVOZ_BENCH_SMOKE=1: run a benchmark's code path with the tiny preset on the CPU (a check, not a measurement)."""
DEVICE = "cpu" if SMOKE else "cuda"
PRESET = "tiny" if SMOKE else "e4b"


def build_e4b(dtype: str = "bfloat16"):
    """Full-size E4B (text + audio towers, no vision) with random weights (bf16 by default), built on the GPU."""
    import torch

    from ovoz.gemma.testing import build_random_model, build_tokenizer, model_config

    tokenizer = build_tokenizer()
    config = model_config(tokenizer, PRESET)
    model = build_random_model(config, seed=0, dtype=getattr(torch, dtype), device=DEVICE)
    return model, tokenizer


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float:
    import torch

    return gib(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else 0.0


def allocated_gib() -> float:
    """GPU memory held by tensors now (weights, LoRA, inputs: what a step starts from)."""
    import torch

    return gib(torch.cuda.memory_allocated()) if torch.cuda.is_available() else 0.0


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 2)


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        versions = f"torch {torch.__version__}"
        import transformers

        versions += f", transformers {transformers.__version__}"
    except ImportError:
        gpu, versions = "?", "?"
    return f"{gpu}; {platform.python_version()}; {versions}; {time.strftime('%Y-%m-%d')}"


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    head = " | ".join(c.ljust(widths[c]) for c in columns)
    lines = [f"| {head} |", "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def print_profile(prof, name: str) -> None:
    """The top ops of a ``torch.profiler`` run: kernel count and kernel time, then by GPU time and by host time."""
    from torch.autograd import DeviceType

    averages = prof.key_averages()
    kernels = [e for e in averages if e.device_type == DeviceType.CUDA]  # CPU ops also report device time
    kernel_ms = sum(e.self_device_time_total for e in kernels) / 1000
    n_kernels = sum(e.count for e in kernels)
    print(f"# one '{name}' step: {n_kernels} kernels, {kernel_ms:.1f} ms of kernel time")
    print(averages.table(sort_by="cuda_time_total", row_limit=20, max_name_column_width=80))
    print(averages.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=80))


def write_results(name: str, rows: list[dict], columns: list[str], out_dir: str | None = None) -> str:
    """The benchmark's table as JSON under benchmarks/results/ (or ``out_dir``): date, machine, versions, command,
    the column names and one object per row with those names. Returns the file's path."""
    import json
    import os
    import sys

    versions = {}
    for module in ("torch", "transformers", "triton", "peft"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    folder = out_dir or os.environ.get("OVOZ_RESULTS_DIR") or os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(folder, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = os.path.join(folder, f"{name}-{stamp}.json")
    record = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
              "versions": versions, "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
              "columns": columns, "rows": [{c: row.get(c) for c in columns} for row in rows]}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
        handle.write("\n")
    print(f"results: {path}", flush=True)
    return path
