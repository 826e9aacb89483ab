"""Helpers shared by the training tests (imported as a module: conftest is not importable)."""

from __future__ import annotations

import json
from pathlib import Path


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def tiny_config(model_dir: Path, data: Path, output_dir: Path, **changes):
    """The seed recipe shrunk for the tiny CPU model: fast steps, no TensorBoard unless asked."""
    from ovoz.train import resolve_config

    values = dict(
        base=str(model_dir), data=str(data), output_dir=str(output_dir), batch_size=2, max_steps=2,
        gradient_checkpointing=False, report_to=["none"], progress_bar=False, save_steps=100, eval_steps=100,
        eval_max_new_tokens=8, eval_batch_size=4, logging_steps=1, shuffle_buffer=0,
    )
    values.update(changes)
    return resolve_config(None, values)


def losses(result) -> dict[int, float]:
    """Training loss per logged step."""
    return {row["step"]: row["loss"] for row in result.log_history if "loss" in row}


def lora_model_and_processor(model_dir: Path):
    """The tiny base in float32 with a trainable seed-target LoRA (random, non-zero B), and its processor."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma4ForConditionalGeneration

    from ovoz.gemma.adapter import target_regex
    from ovoz.gemma.processor import load_processor

    torch.manual_seed(0)
    processor = load_processor(model_dir)
    model = Gemma4ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=target_regex(),
                                             init_lora_weights=False))
    model.train()
    return model, processor
