"""The model card written beside a trained adapter: data, recipe and evaluation numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

CARD_NAME = "README.md"

_RECIPE_FIELDS = (
    "base", "train_mode", "adapter", "backend", "load_in_4bit", "lora_r", "lora_alpha", "lora_dropout", "lora_bias",
    "lora_parts",
    "epochs", "max_steps", "batch_size", "grad_accum", "learning_rate", "lr_scheduler", "warmup", "optimizer",
    "weight_decay", "max_grad_norm", "precision", "gradient_checkpointing", "seed", "max_seq_length", "max_clip_s",
    "long_clips", "normalize_text", "loss_on_prompt",
)


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def render_model_card(
    config: Any,
    *,
    base_model: str,
    data: dict[str, Any],
    training: dict[str, Any],
    evaluation: list[dict[str, float]],
) -> str:
    """Markdown with a Hugging Face front matter (``library_name: peft``) for a trained adapter.

    ``train_mode=full``: the card of a whole model (``library_name: transformers``), loaded as ``--base``.
    """
    full = getattr(config, "train_mode", "lora") == "full"
    lines = [
        "---",
        f"base_model: {base_model}",
        f"library_name: {'transformers' if full else 'peft'}",
        "language:",
        "- uz",
        "pipeline_tag: automatic-speech-recognition",
        "tags:",
        "- ovoz",
        "- gemma4",
        "- full" if full else "- lora",
        "- speech-to-text",
        "---",
        "",
        "# Uzbek speech-to-text model of the Gemma 4 architecture" if full
        else "# Uzbek speech-to-text LoRA adapter for Gemma 4",
        "",
        (f"Every weight trained with [ovoz](https://github.com/ovoz-stt/ovoz), starting from `{base_model}`." if full
         else f"Trained with [ovoz](https://github.com/ovoz-stt/ovoz) on top of `{base_model}`"
         + (f", continuing `{config.adapter}`." if config.adapter else ".")),
        "",
        "```python",
        "import ovoz",
        'model = ovoz.load(base="path/to/this/folder", adapter=None)' if full
        else f'model = ovoz.load(base="{config.base}", adapter="path/to/this/folder")',
        'print(model.transcribe("audio.wav").text)',
        "```",
        "",
        "## Data",
        "",
        f"- training corpus: `{config.data}` (split `{config.split}`)",
        f"- dev corpus: `{config.eval_data}` (split `{config.eval_split}`)" if config.eval_data else "- dev corpus: none",
    ]
    for key, label in (("n_rows_read", "rows read"), ("n_bad_rows", "bad manifest rows skipped"),
                       ("n_examples", "examples built (all passes)"), ("hours", "hours of audio (all passes)"),
                       ("n_broken_audio", "broken audio dropped"), ("n_too_long_dropped", "clips over max_clip_s dropped"),
                       ("n_too_long_split", "clips over max_clip_s split"),
                       ("n_over_token_budget", "examples over max_seq_length dropped")):
        if key in data and data[key] is not None:
            value = data[key]
            lines.append(f"- {label}: {value:.2f}" if isinstance(value, float) else f"- {label}: {value}")
    lines += ["", "## Recipe", "", "| field | value |", "|---|---|"]
    for name in _RECIPE_FIELDS:
        lines.append(f"| {name} | `{getattr(config, name)}` |")
    lines += ["", "The full resolved configuration is in `ovoz_train.yaml`.", "", "## Training", ""]
    for key, value in training.items():
        lines.append(f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}")
    lines += ["", "## Evaluation", ""]
    if evaluation:
        lines += [f"WER / CER on the dev corpus after the `{config.eval_normalizer}` normalizer, greedy decoding:", "",
                  "| step | WER | CER | clips |", "|---|---|---|---|"]
        for row in evaluation:
            lines.append(f"| {row.get('step')} | {_percent(row.get('eval_wer'))} | {_percent(row.get('eval_cer'))} "
                         f"| {int(row.get('eval_n_clips', 0))} |")
    else:
        lines.append("No dev corpus was given: no evaluation numbers.")
    lines.append("")
    return "\n".join(lines)


def write_model_card(folder: str | Path, text: str) -> Path:
    path = Path(folder) / CARD_NAME
    path.write_text(text, encoding="utf-8")
    return path
