"""One model, one held-out set, every decoding path: CER through each, to show they agree (issue 15, item 4).

Paths: plain ``generate`` on the CPU; on CUDA the static engine, plain ``generate`` with the processor's CPU
features and with ovoz's GPU features, batched and batch 1; 4-bit (bitsandbytes) where it is installed.
Used by benchmarks/demo_model.py; tests/demo/test_shipped.py checks the CPU paths in the suite.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def held_out(manifest: Path, limit: int) -> tuple[list[Any], list[str]]:
    import ovoz

    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    return [ovoz.load_audio(manifest.parent / row["audio"]) for row in rows], [row["text"] for row in rows]


@contextmanager
def features_on(device: str):
    """Make plain ``generate`` compute its log-mel features with ovoz.features on ``device`` (not the processor)."""
    import ovoz.gemma.generate as engine

    original = engine.prepare_inputs

    def on_device(processor, clips, system, user, device_arg=None):
        from ovoz.gemma.features import prepare_inputs_torch

        return prepare_inputs_torch(processor, clips, system, user, device)

    engine.prepare_inputs = on_device
    try:
        yield
    finally:
        engine.prepare_inputs = original


def cer_through(model: Any, clips: list, texts: list[str], batch_size: int) -> tuple[float, float, list[str]]:
    from ovoz.eval.metrics import score
    from ovoz.types import TranscribeOptions

    options = TranscribeOptions(batch_size=batch_size, max_new_tokens=64)
    started = time.perf_counter()
    outputs = model.generate_clips(clips, options)
    seconds = time.perf_counter() - started
    hypotheses = [output.text for output in outputs]
    return score(list(zip(texts, hypotheses)), "normalized").cer, seconds, hypotheses


def consistency_rows(model_dir: Path, manifest: Path, *, cuda: bool, limit: int = 256,
                     log: Callable[[str], None] = print) -> dict:
    import ovoz

    clips, texts = held_out(manifest, limit)
    rows: list[dict] = []
    reference: list[str] | None = None

    def add(path: str, model: Any, batch_size: int) -> None:
        nonlocal reference
        cer, seconds, hypotheses = cer_through(model, clips, texts, batch_size)
        same = None if reference is None else sum(a == b for a, b in zip(reference, hypotheses)) / len(hypotheses)
        reference = reference or hypotheses
        rows.append({"path": path, "cer": cer, "n": len(clips), "seconds": round(seconds, 2),
                     "same_text_as_first": same})
        log(f"  {path}: CER {100 * cer:.2f}% ({seconds:.1f} s)")

    cpu = ovoz.load(base=str(model_dir), adapter=None, device="cpu", engine="generate")
    add("cpu generate, processor features, batch 16", cpu, 16)
    add("cpu generate, processor features, batch 1", cpu, 1)
    with features_on("cpu"):
        add("cpu generate, ovoz torch features, batch 16", cpu, 16)
    if cuda:
        static = ovoz.load(base=str(model_dir), adapter=None, device="cuda", engine="static")
        add("cuda static engine (GPU features), batch 64", static, 64)
        add("cuda static engine (GPU features), batch 1", static, 1)
        plain = ovoz.load(base=str(model_dir), adapter=None, device="cuda", engine="generate")
        add("cuda generate, processor (CPU) features, batch 64", plain, 64)
        with features_on("cuda"):
            add("cuda generate, GPU features, batch 64", plain, 64)
        if importlib.util.find_spec("bitsandbytes") is not None:
            four = ovoz.load(base=str(model_dir), adapter=None, device="cuda", quantization="4bit")
            add("cuda 4-bit (bitsandbytes NF4), static engine, batch 64", four, 64)
        else:
            rows.append({"path": "cuda 4-bit", "cer": None, "n": 0, "note": "bitsandbytes not installed: not run"})
    measured = [row["cer"] for row in rows if row["cer"] is not None]
    return {"rows": rows, "spread_points": round(100 * (max(measured) - min(measured)), 3)}
