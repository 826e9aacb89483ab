"""The model to train: Gemma 4 base (4-bit on CUDA) + a new or continued LoRA adapter, on one of two backends.

* ``transformers``: transformers + PEFT everywhere (CPU included). New adapters target the inner ``.linear`` of
  Gemma 4's clippable linears through a regex (``ovoz.gemma.adapter.target_regex``), so stock PEFT accepts them.
* ``unsloth``: Unsloth's ``FastModel`` (CUDA only, optional extra). Its saved ``adapter_config.json`` is rewritten
  to the same regex afterwards, so both backends produce the same adapter layout.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DependencyError

logger = logging.getLogger(__name__)


@dataclass
class TrainModel:
    """What ``load_for_training`` built."""

    model: Any
    """A ``PeftModel`` with trainable LoRA weights, or (``train_mode=full``) the whole model, every weight trainable."""
    processor: Any
    backend: str
    device: str
    bf16: bool
    quantized: bool
    base_folder: Path
    continued_from: str | None = None
    compiled_layers: int = 0
    """Decoder/conformer layers whose forward runs through ``torch.compile`` (0: eager)."""
    per_layer_embeddings_on_cpu: bool = False


def resolve_backend(backend: str, device: str) -> str:
    """``auto`` picks Unsloth when it is installed and the device is CUDA, else transformers."""
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if backend == "auto":
        return "unsloth" if has_unsloth and device.startswith("cuda") else "transformers"
    if backend == "unsloth":
        if not device.startswith("cuda"):
            raise ConfigError("backend=unsloth needs a CUDA GPU (Unsloth refuses audio models on the CPU); "
                              "use --backend transformers.")
        if not has_unsloth:
            raise DependencyError("backend=unsloth: Unsloth is not installed; pip install 'ovoz[unsloth]' in its "
                                  "own environment (see docs/training.md), or use --backend transformers.")
    return backend


def lora_config(config: Any) -> Any:
    from peft import LoraConfig

    from .adapter import target_regex

    return LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, bias=config.lora_bias,
        target_modules=target_regex(config.lora_parts),
    )


def load_for_training(config: Any, device: str) -> TrainModel:
    """Load the base and attach a trainable adapter (new, or continued from ``config.adapter``).

    ``train_mode=full``: no adapter; every weight is trainable and kept in float32 (bf16 runs under autocast), and
    the per-layer embeddings stay on the training device (a table on the CPU would not be trained).
    """
    import torch

    from .loading import DEFAULT_BASE, DEFAULT_BASE_4BIT, resolve_folders

    cuda = device.startswith("cuda")
    bf16 = config.precision == "bf16" or (config.precision == "auto" and cuda)
    quantize = config.load_in_4bit and cuda
    if config.load_in_4bit and not cuda:
        logger.warning("load_in_4bit needs CUDA (bitsandbytes): training the base in %s on %s instead",
                       "bf16" if bf16 else "float32", device)
    base = config.base
    if quantize and base == DEFAULT_BASE:
        base = DEFAULT_BASE_4BIT  # the pre-quantized checkpoint the seed was trained from
    base_folder, adapter_folder = resolve_folders(base, config.adapter or None,
                                                  local_files_only=config.local_files_only)
    backend = resolve_backend(config.backend, device)
    full = getattr(config, "train_mode", "lora") == "full"
    dtype = torch.bfloat16 if bf16 and not full else torch.float32
    compiled = 0
    ple_on_cpu = False
    if backend == "unsloth":
        model = _load_unsloth(config, base_folder, quantize, adapter_folder)
    else:
        ple_on_cpu = not full and (config.per_layer_embeddings == "cpu"
                                   or (config.per_layer_embeddings == "auto" and cuda))
        model = _load_transformers(config, base_folder, quantize, dtype, device, ple_on_cpu=ple_on_cpu)
        if full:
            model.requires_grad_(True)
        else:
            model = _attach_adapter(config, model, adapter_folder)
        if use_compiled_layers(config.compile_layers, device):
            from .kernels.compiled_layers import compile_layers

            compiled = compile_layers(model, fall_back=config.compile_layers == "auto")
    from .processor import load_processor

    processor = load_processor(base_folder)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("training %s on %s (%s, %s%s): %.2f M trainable parameters", base, device, backend,
                "bf16" if bf16 else "float32", ", 4-bit base" if quantize else "", trainable / 1e6)
    return TrainModel(model, processor, backend, device, bf16, quantize, base_folder,
                      str(config.adapter) if config.adapter else None, compiled, ple_on_cpu)


def use_compiled_layers(setting: str, device: str) -> bool:
    """``compile_layers``: ``auto`` compiles on CUDA when Triton is there; ``on`` insists (on the CPU too)."""
    from .kernels.compiled_layers import available

    if setting == "on" and device.startswith("cuda") and not available(device):
        raise DependencyError("compile_layers=on needs Triton for CUDA (it comes with PyTorch's CUDA wheels) and a "
                              "GPU of compute capability 7.0 or newer; pass --compile-layers off.")
    return setting == "on" or (setting == "auto" and available(device))


def _load_transformers(config: Any, folder: Path, quantize: bool, dtype: Any, device: str, *,
                       ple_on_cpu: bool = False) -> Any:
    from transformers import Gemma4ForConditionalGeneration

    from ..errors import ModelLoadError, named
    from .hub import weight_errors, weights_error

    kwargs: dict[str, Any] = {"dtype": dtype}
    if quantize:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as error:
            raise DependencyError("load_in_4bit needs bitsandbytes: pip install 'ovoz[4bit]', "
                                  "or pass --no-load-in-4bit.") from error
        if not (folder / "config.json").read_text(encoding="utf-8").count("quantization_config"):
            from .loading import quantization_config

            kwargs["quantization_config"] = quantization_config(dtype)
        kwargs["device_map"] = {"": device}
    try:
        model = Gemma4ForConditionalGeneration.from_pretrained(folder, **kwargs)
    except weight_errors() as error:
        raise weights_error(folder, error) from error
    if model.config.audio_config is None:
        raise ModelLoadError(f"{named('base', folder)}: this Gemma 4 model has no audio tower; use an E2B/E4B model.")
    from .memory import drop_vision_tower, per_layer_embeddings_on_cpu

    drop_vision_tower(model)
    if ple_on_cpu:
        per_layer_embeddings_on_cpu(model, device)
    if quantize:
        # Only freeze the base. peft's prepare_model_for_kbit_training would also cast every bf16 weight that is
        # not 4-bit to float32 (a habit from fp16 training): on E4B the 2.8 B per-layer embeddings, the token
        # embeddings and the audio tower, which raised the 4-bit step's peak to 23.4 GiB (BENCHMARKS.md).
        # bf16 training needs no upcast; the trainable LoRA weights are float32 anyway.
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    else:
        model.to(device)  # the per-layer table, if kept on the CPU, is not a registered parameter any more
    model.config.use_cache = False
    return model


def _attach_adapter(config: Any, model: Any, adapter_folder: Path | None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import set_seed

    set_seed(config.seed)  # the LoRA initialisation depends on it
    if adapter_folder is None:
        return get_peft_model(model, lora_config(config))
    from .adapter import check_fits, inspect_adapter

    info = inspect_adapter(adapter_folder)
    check_fits(model, adapter_folder, info)  # one line for an adapter of another base, not PEFT's 74
    saved = LoraConfig.from_pretrained(str(adapter_folder))
    saved.target_modules = list(info.modules)  # from the weight keys: works for Unsloth- and PEFT-saved adapters
    saved.inference_mode = False
    if (saved.r, saved.lora_alpha) != (config.lora_r, config.lora_alpha):
        logger.warning("continuing %s: its own r=%s alpha=%s are kept (lora_r/lora_alpha of the config ignored)",
                       adapter_folder, saved.r, saved.lora_alpha)
    logger.info("continuing adapter %s: %s", adapter_folder, info.summary())
    return PeftModel.from_pretrained(model, str(adapter_folder), config=saved, is_trainable=True)


UNSLOTH_COMPILE_ENV = "UNSLOTH_COMPILE_DISABLE"


def set_unsloth_compile(setting: str) -> None:
    """Apply ``compile_layers`` to the Unsloth backend, through the variable Unsloth reads when it is imported.

    ``auto`` and ``off`` set ``UNSLOTH_COMPILE_DISABLE=1``; ``on`` leaves Unsloth's own ``torch.compile`` on. On
    the GPU box (H200, Unsloth 2026.10.9) the first step with Unsloth's compilation had not finished after 280 s,
    even on the tiny test model; with it disabled, the whole 6-step run took 73 s. A value the user exported wins.
    """
    import os
    import sys

    if UNSLOTH_COMPILE_ENV in os.environ:
        logger.info("Unsloth: %s=%s (from the environment)", UNSLOTH_COMPILE_ENV, os.environ[UNSLOTH_COMPILE_ENV])
        return
    if setting == "on":
        return
    if "unsloth" in sys.modules:
        logger.warning("Unsloth was imported before ovoz could set %s=1 (compile_layers=%s): Unsloth compiles, "
                       "and its first steps can take many minutes. Export %s=1 before starting Python to avoid it.",
                       UNSLOTH_COMPILE_ENV, setting, UNSLOTH_COMPILE_ENV)
        return
    os.environ[UNSLOTH_COMPILE_ENV] = "1"
    logger.info("Unsloth: %s=1 (compile_layers=%s; 'on' keeps Unsloth's compilation)", UNSLOTH_COMPILE_ENV, setting)


def _load_unsloth(config: Any, folder: Path, quantize: bool, adapter_folder: Path | None) -> Any:  # pragma: no cover
    """Unsloth's FastModel path (the seed notebook's). It needs CUDA, so the CPU suite cannot run it."""
    set_unsloth_compile(config.compile_layers)
    from unsloth import FastModel  # imported first: Unsloth patches transformers on import

    model, _ = FastModel.from_pretrained(
        model_name=str(folder.resolve()),  # absolute: Unsloth looks a relative "org/name"-like path up online
        max_seq_length=config.max_seq_length, load_in_4bit=quantize, full_finetuning=False, dtype=None,
    )
    if adapter_folder is not None:
        return _attach_adapter(config, model, adapter_folder)
    from .adapter import target_regex

    # ovoz's regex, not the seed's name list: Unsloth filters a name list by its finetune_* flags and silently drops
    # every audio-tower target unless finetune_audio_layers is set (which then adds the audio q/k/v too). A string
    # reaches PEFT unchanged and names the inner ``.linear`` of the clippable linears, as the other backend does.
    return FastModel.get_peft_model(
        model,
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, bias=config.lora_bias,
        random_state=config.seed, use_rslora=False, loftq_config=None,
        target_modules=target_regex(config.lora_parts),
        use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
    )


def normalize_saved_adapter(folder: Path, config: Any) -> None:
    """Give a saved adapter one layout whatever wrote it, loadable by stock PEFT.

    * ``target_modules`` becomes the regex over its weight keys. Unsloth's older name lists (and stock PEFT's
      explicit module lists from a continued adapter) are replaced: stock PEFT refuses the plain names on Gemma 4's
      clippable linears.
    * ``task_type`` becomes ``null``, as the transformers backend writes it. Unsloth writes ``CAUSAL_LM``; stock
      PEFT loads either, as a ``PeftModel`` or a ``PeftModelForCausalLM``.
    """
    import json
    import re

    from .adapter import inspect_adapter

    config_file = folder / "adapter_config.json"
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    changed = saved.get("task_type") is not None
    saved["task_type"] = None
    if not isinstance(saved.get("target_modules"), str):  # a new adapter on either backend has the regex already
        saved["target_modules"] = "|".join(re.escape(module) for module in inspect_adapter(folder).modules)
        changed = True
    if changed:
        config_file.write_text(json.dumps(saved, indent=2), encoding="utf-8")
