"""LoRA adapters for Gemma 4 audio: targets that work in stock PEFT, and loading any saved adapter.

Gemma 4's audio tower wraps its linears in ``Gemma4ClippableLinear`` (an ``nn.Module`` holding ``.linear``),
which PEFT cannot adapt. The seed's plain name list (``post``, ``linear_start``, ...) therefore fails in
stock PEFT, and Unsloth saves that list while its weight keys point at ``...post.linear``. ovoz never trusts
the saved ``target_modules``: it derives the targets from the weight keys themselves.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import AdapterError

logger = logging.getLogger(__name__)

_LANGUAGE = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
_AUDIO = (
    r".*audio_tower.*\.(self_attn\.post|lconv1d\.linear_start|lconv1d\.linear_end"
    r"|feed_forward[12]\.ffw_layer_[12])\.linear|.*audio_tower\.output_proj"
)
_AUDIO_ATTENTION = r".*audio_tower.*\.self_attn\.(q_proj|k_proj|v_proj)\.linear"
_EMBEDDER = r".*embed_audio\.embedding_projection"
PART_PATTERNS = {"language": _LANGUAGE, "audio": _AUDIO, "audio_attention": _AUDIO_ATTENTION, "embedder": _EMBEDDER}
"""Regexes over leaf ``nn.Linear`` names, per part of the model (seed targets + the older audio q/k/v)."""

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def target_regex(parts: Iterable[str] = ("language", "audio", "embedder")) -> str:
    """A PEFT ``target_modules`` regex (full match) for the seed's targets in the given parts."""
    chosen = []
    for part in parts:
        if part not in PART_PATTERNS:
            raise AdapterError(f"unknown adapter part {part!r}; choose from {', '.join(PART_PATTERNS)}.")
        chosen.append(f"(?:{PART_PATTERNS[part]})")
    return "|".join(chosen)


@dataclass(frozen=True)
class AdapterInfo:
    """What a saved adapter adapts, read from its weight keys (never from its config)."""

    path: str
    modules: tuple[str, ...]
    """Module paths (inside the base model) that carry LoRA weights."""
    rank: int | None
    alpha: float | None
    parts: dict[str, int] = field(default_factory=dict)
    """Adapted modules per part: language tower, audio tower, audio embedder, other."""

    def summary(self) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in self.parts.items() if count)
        return f"LoRA r={self.rank} alpha={self.alpha}: {len(self.modules)} modules ({counts or 'none'})"


def classify(module: str) -> str:
    """Which part of Gemma 4 a module path belongs to."""
    if "embed_audio" in module:
        return "audio embedder"
    if "audio_tower" in module:
        return "audio tower"
    if "language_model" in module:
        return "language tower"
    return "other"


def read_weight_keys(folder: Path) -> list[str]:
    return list(read_weight_shapes(folder))


def read_weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Every weight key of the adapter in ``folder`` and its shape, from the file's header (nothing is loaded)."""
    for name in WEIGHT_FILES:
        file = folder / name
        if not file.exists():
            continue
        try:
            if name.endswith(".safetensors"):
                from safetensors import safe_open

                with safe_open(str(file), framework="pt") as handle:
                    return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118 (safe_open is no dict)
            import torch

            state = torch.load(file, map_location="meta", weights_only=True)
            return {key: tuple(value.shape) for key, value in state.items()}
        except Exception as error:  # corrupt file: name it
            raise AdapterError(f"{file}: the adapter weights cannot be read ({error}).") from error
    raise AdapterError(
        f"{folder}: no {' or '.join(WEIGHT_FILES)} found. Give the folder that PEFT's save_pretrained wrote."
    )


def inspect_adapter(folder: str | Path) -> AdapterInfo:
    """Read an adapter folder's config and weight keys; raise :class:`AdapterError` when malformed."""
    folder = Path(folder)
    config_file = folder / "adapter_config.json"
    if not config_file.exists():
        raise AdapterError(f"{folder}: no adapter_config.json; this is not a PEFT/Unsloth adapter folder.")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AdapterError(f"{config_file}: invalid JSON ({error}).") from error
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{config_file}: peft_type={config.get('peft_type')!r}; ovoz loads LoRA adapters only.")
    modules = sorted(
        {
            _strip_prefix(key.split(".lora_", 1)[0])
            for key in read_weight_keys(folder)
            if ".lora_A" in key or ".lora_B" in key
        }
    )
    parts = {"language tower": 0, "audio tower": 0, "audio embedder": 0, "other": 0}
    for module in modules:
        parts[classify(module)] += 1
    return AdapterInfo(str(folder), tuple(modules), config.get("r"), config.get("lora_alpha"), parts)


def _strip_prefix(key: str) -> str:
    return key[len("base_model.model.") :] if key.startswith("base_model.model.") else key


def recorded_base(folder: str | Path) -> str | None:
    """The base model an adapter was trained on, as its ``adapter_config.json`` records it (None if it does not)."""
    try:
        config = json.loads((Path(folder) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = config.get("base_model_name_or_path")
    return str(base) if base else None


def check_fits(model: Any, folder: str | Path, info: AdapterInfo) -> None:
    """Raise one :class:`AdapterError` line when the adapter's modules or LoRA shapes do not fit ``model``
    (an adapter trained on another base), before PEFT reports every mismatched tensor."""
    import torch

    folder = Path(folder)
    if not info.modules:
        raise AdapterError(f"{folder}: the adapter holds no LoRA weights (no lora_A/lora_B keys).")
    made_for = recorded_base(folder)
    hint = f"give the base it was trained on ({made_for}, says its adapter_config.json)" if made_for else (
        "give the base it was trained on")
    found = dict(model.named_modules())
    missing = [m for m in info.modules if m not in found]
    if missing:
        raise AdapterError(f"{folder}: {len(missing)} adapted modules do not exist in the base model (first: "
                           f"{missing[0]}): the adapter was trained on another base; {hint}.")
    wrong = [m for m in info.modules if not isinstance(found[m], torch.nn.Linear)]
    if wrong:
        raise AdapterError(
            f"{folder}: adapted module {wrong[0]} is a {type(found[wrong[0]]).__name__}, not a Linear layer; "
            "LoRA weights must sit on the inner `.linear` of Gemma 4's clippable linears."
        )
    misfits = []
    for key, shape in read_weight_shapes(folder).items():
        module_name, _, rest = key.partition(".lora_")
        module = found.get(_strip_prefix(module_name))
        if module is None or len(shape) != 2 or not isinstance(module, torch.nn.Linear):
            continue
        side, got, expected = ("input", shape[1], module.in_features) if rest.startswith("A") else (
            "output", shape[0], module.out_features)
        if got != expected:
            misfits.append(f"{_strip_prefix(module_name)} {side} {got} vs {expected}")
    if misfits:
        raise AdapterError(f"{folder}: the adapter was trained on another base model: {len(misfits)} LoRA weights "
                           f"do not fit this one (first: {misfits[0]} features); {hint}.")


def apply_adapter(model: Any, folder: str | Path, *, hub_kwargs: dict | None = None) -> tuple[Any, AdapterInfo]:
    """Wrap ``model`` in a ``PeftModel`` with the adapter in ``folder`` (Unsloth- or PEFT-saved).

    The saved ``target_modules`` is replaced by the exact module paths found in the weight keys, after checking
    that every one exists in the base and is an ``nn.Linear``.
    """
    from peft import LoraConfig, PeftModel

    info = inspect_adapter(folder)
    check_fits(model, folder, info)
    config = LoraConfig.from_pretrained(str(folder))
    config.target_modules = list(info.modules)
    config.init_lora_weights = True  # every adapted module gets its saved weights; nothing stays random
    config.inference_mode = True
    try:
        peft_model = PeftModel.from_pretrained(model, str(folder), config=config, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as error:
        raise AdapterError(f"{folder}: the adapter does not fit the base model ({error}).") from error
    return peft_model, info


def has_lora(model: Any) -> bool:
    """Whether any LoRA layer is inside ``model``."""
    return any("lora_" in name for name, _ in model.named_modules())
