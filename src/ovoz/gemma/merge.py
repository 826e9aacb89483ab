"""Fold a LoRA adapter into its base and save a plain Gemma 4 model folder (for engines without adapters).

vLLM silently drops audio-tower LoRA weights (GEMMA4.md), so an adapter that touches the audio tower must be
merged before such an engine serves it. The merged folder holds the weights, config, tokenizer, audio feature
extractor and generation config: ``ovoz.load(base=folder, adapter=None)`` and ``from_pretrained`` read it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import ConfigError

logger = logging.getLogger(__name__)

MERGE_INFO_NAME = "ovoz_merge.json"


def merge_adapter(
    adapter: str | Path,
    output_dir: str | Path,
    *,
    base: str | Path | None = None,
    dtype: str = "bfloat16",
    device: str = "cpu",
    local_files_only: bool = False,
    overwrite: bool = False,
) -> Path:
    """Load ``base`` + ``adapter``, merge the LoRA weights and write a model folder to ``output_dir``.

    ``base``: hub id or folder (default: the base recorded in the adapter's ``adapter_config.json``, with the
    pre-quantized 4-bit base replaced by its full-precision original, as a 4-bit base cannot be merged; ovoz's
    default base when the adapter records none).
    ``dtype``: weights dtype of the merged model (``bfloat16`` default, ``float32`` for tests).
    ``device``: where the merge runs (the CPU needs about 16 GB of memory for E4B in bf16).
    """
    from ..types import DEFAULT_BASE
    from .loading import load_decoder, save_merged

    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ConfigError(f"--output-dir {output_dir}: exists and is not empty; pass --overwrite or another folder.")
    if base is None:
        base = base_of_adapter(adapter, local_files_only=local_files_only)
    if "bnb-4bit" in str(base) or "4bit" in str(base).lower():
        logger.warning("%s looks 4-bit quantized: merging needs the full-precision base (e.g. %s)", base, DEFAULT_BASE)
    transcriber = load_decoder(base, adapter, device=device, dtype=dtype, local_files_only=local_files_only,
                       merge_adapter=True)
    if transcriber.info.quantization:
        raise ConfigError(f"--base {base} is quantized; merge into the full-precision base (e.g. {DEFAULT_BASE}).")
    save_merged(transcriber, output_dir)
    info = {"base": str(base), "adapter": str(adapter), "dtype": dtype,
            "adapter_summary": transcriber.info.adapter_summary}
    (output_dir / MERGE_INFO_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
    logger.info("merged %s into %s: %s", adapter, base, output_dir)
    return output_dir


def base_of_adapter(adapter: str | Path, *, local_files_only: bool = False) -> str:
    """The base to merge ``adapter`` into when none is given: the one it records, in full precision."""
    from .adapter import recorded_base
    from .loading import DEFAULT_BASE, DEFAULT_BASE_4BIT, resolve_folder

    recorded = recorded_base(resolve_folder(adapter, kind="adapter", local_files_only=local_files_only))
    if recorded is None:
        logger.info("%s records no base model; merging into %s", adapter, DEFAULT_BASE)
        return DEFAULT_BASE
    if recorded.lower() == DEFAULT_BASE_4BIT.lower():
        logger.info("%s was trained on the 4-bit %s; merging into its full-precision original %s", adapter,
                    recorded, DEFAULT_BASE)
        return DEFAULT_BASE
    logger.info("merging %s into the base it records: %s", adapter, recorded)
    return recorded
