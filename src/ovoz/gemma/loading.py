"""The only module that knows how Gemma 4 + a LoRA adapter are loaded.

``load`` resolves hub ids or local folders, builds the model in the requested dtype / quantization on the
requested device, applies the adapter (Unsloth- or PEFT-saved) and returns a :class:`ovoz.gemma.decoder.GemmaDecoder`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DependencyError, ModelLoadError, named

if TYPE_CHECKING:
    from .decoder import GemmaDecoder
    from .vllm_backend import VLLMDecoder

logger = logging.getLogger(__name__)

from ..types import DEFAULT_ADAPTER, DEFAULT_BASE, DEFAULT_BASE_4BIT, ENGINES
from .hub import read_config, resolve_folder, resolve_folders, weight_errors, weights_error  # noqa: F401 (re-exported)

DTYPES = ("bfloat16", "float16", "float32")

SKIP_4BIT_MODULES = ("audio_tower", "embed_audio", "lm_head")
"""Left in bf16 by 4-bit loading, as in Unsloth's pre-quantized checkpoint: the audio tower's clippable linears, the
audio embedder and the output head."""


def quantization_config(compute_dtype: Any) -> Any:
    """The bitsandbytes 4-bit (NF4, double quantization) config ovoz loads a full-precision base with."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype,
                              bnb_4bit_use_double_quant=True, llm_int8_skip_modules=list(SKIP_4BIT_MODULES))
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, echoed into every result."""

    base: str
    adapter: str | None
    device: str
    dtype: str
    quantization: str | None
    adapter_summary: str | None = None
    adapted_parts: dict[str, int] | None = None
    merged: bool = False
    load_s: float = 0.0
    engine: str = "ovoz"
    """``"ovoz"`` (ovoz's own engines on transformers) or ``"vllm"``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` picks CUDA when present, else the CPU."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}: CUDA is not available on this machine; use --device cpu.")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ConfigError(f"device={device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'.")
    return device


def resolve_dtype(dtype: str | None) -> str:
    """bf16 by default on GPU and CPU alike (the full-size model needs ~32 GB in float32)."""
    name = _DTYPE_ALIASES.get(dtype or "bfloat16", dtype or "bfloat16")
    if name not in DTYPES:
        raise ConfigError(f"dtype={dtype!r}: choose one of {', '.join(DTYPES)}.")
    if name == "float16":
        logger.warning("float16 is not recommended for Gemma 4 (overflows); bfloat16 is the default")
    return name


def load_decoder(
    base: str | Path = DEFAULT_BASE,
    adapter: str | Path | None = DEFAULT_ADAPTER,
    *,
    device: str | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    local_files_only: bool = False,
    merge_adapter: bool = True,
    revision: str | None = None,
    engine: str = "auto",
    fused_kernels: bool | None = None,
    vllm_options: Any = None,
) -> "GemmaDecoder | VLLMDecoder":
    """Load a Gemma 4 audio model and (optionally) a LoRA adapter as a :class:`ovoz.gemma.decoder.GemmaDecoder`.

    ``base``/``adapter``: hub ids or local folders; ``adapter=None`` runs the base alone. ``base="demo"``: the small
    demo model shipped with ovoz (synthetic speech only; :mod:`ovoz.demo`), without the published adapter (which is
    for E4B) unless another adapter is named.
    ``device``: ``"cuda"``, ``"cpu"`` or ``None`` for the best available. ``dtype``: ``"bfloat16"`` (default)
    or ``"float32"``. ``quantization="4bit"`` loads the base through bitsandbytes (CUDA only; the default base
    then becomes the pre-quantized ``unsloth/gemma-4-e4b-it-unsloth-bnb-4bit``). ``merge_adapter`` folds the
    LoRA weights into the base after loading (faster inference; not possible on a 4-bit base).
    ``engine``: ``"auto"`` (static-cache CUDA-graph engine on CUDA, plain ``generate`` on the CPU),
    ``"static"``, ``"generate"`` or ``"vllm"`` (vLLM's engine, in an environment that has vLLM: docs/vllm.md; an
    adapter is then always merged into a temporary copy of the base first, and ``vllm_options``, a
    :class:`ovoz.gemma.vllm_backend.VLLMOptions` or a dict of its fields, sets up vLLM). ``fused_kernels``: the static engine runs Gemma 4's norms, rotary embedding and
    MLP activation as compiled kernels (:mod:`ovoz.gemma.kernels.fused`), about a third faster after a compilation of 10-25 s
    once per process (BENCHMARKS.md); ``None`` (auto) uses them on CUDA for runs of 3 h of audio or more, and
    for every run once they are compiled.
    """
    import torch

    from .adapter import apply_adapter
    from ..demo import is_demo
    from .processor import load_processor

    started = time.perf_counter()
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r}: choose one of {', '.join(ENGINES)}.")
    if is_demo(base) and adapter is not None and str(adapter) == DEFAULT_ADAPTER:
        adapter = None  # the published adapter is for E4B, not for the demo model
    if engine == "vllm":
        return _load_vllm(base, adapter, device=device, dtype=dtype, quantization=quantization,
                          local_files_only=local_files_only, revision=revision, options=vllm_options,
                          started=started)
    device = resolve_device(device)
    dtype_name = resolve_dtype(dtype)
    torch_dtype = getattr(torch, dtype_name)
    model_kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if quantization not in (None, "4bit"):
        raise ConfigError(f"quantization={quantization!r}: use None or '4bit'.")
    if quantization == "4bit":
        if not device.startswith("cuda"):
            raise ConfigError("4-bit loading needs a CUDA GPU (bitsandbytes); drop --4bit on this machine.")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as error:
            raise DependencyError("4-bit loading needs bitsandbytes: pip install 'ovoz[4bit]'.") from error
        if str(base) == DEFAULT_BASE:
            base = DEFAULT_BASE_4BIT
    base_folder, adapter_folder = resolve_folders(base, adapter, local_files_only=local_files_only, revision=revision)
    config = read_config(base_folder, base)
    if quantization == "4bit" and "quantization_config" not in config:
        model_kwargs["quantization_config"] = quantization_config(torch_dtype)
    elif "quantization_config" in config and quantization is None:
        quantization = "4bit"
        logger.info("%s is pre-quantized; loading it as such", base)

    processor = load_processor(base_folder)
    from transformers import Gemma4ForConditionalGeneration

    try:
        model = Gemma4ForConditionalGeneration.from_pretrained(
            base_folder, device_map=device if quantization else None, **model_kwargs
        )
    except weight_errors() as error:
        raise weights_error(base, error) from error
    if model.config.audio_config is None:
        raise ModelLoadError(f"{named('base', base)}: this Gemma 4 model has no audio tower; use an E2B/E4B model.")
    if not quantization:
        model.to(device)
    info_extra: dict[str, Any] = {}
    if adapter_folder is not None:
        model, adapter_info = apply_adapter(model, adapter_folder)
        _report_adapter(adapter, adapter_info)
        info_extra = {"adapter_summary": adapter_info.summary(), "adapted_parts": adapter_info.parts}
        if merge_adapter and not quantization:
            model = model.merge_and_unload()
            info_extra["merged"] = True
    model.eval()
    info = ModelInfo(
        base=str(base),
        adapter=str(adapter) if adapter is not None else None,
        device=device,
        dtype=dtype_name,
        quantization=quantization,
        load_s=round(time.perf_counter() - started, 3),
        **info_extra,
    )
    logger.info("loaded %s%s on %s (%s) in %.1f s", info.base, f" + {info.adapter}" if info.adapter else "",
                device, dtype_name, info.load_s)
    from .decoder import GemmaDecoder

    return GemmaDecoder(model, processor, info, engine=engine, fused_kernels=fused_kernels)


def save_merged(decoder: "GemmaDecoder", output_dir: Path) -> Path:
    """Write a decoder's (merged) model and processor as a plain model folder that ``from_pretrained`` reads."""
    output_dir.mkdir(parents=True, exist_ok=True)
    decoder.model.save_pretrained(output_dir)
    decoder.processor.save_pretrained(output_dir)
    return output_dir


def merge_to_temporary(base: str | Path, adapter: str | Path, *, dtype: str, local_files_only: bool = False,
                       revision: str | None = None) -> tuple[Path, str | None, dict[str, int] | None]:
    """``adapter`` merged into ``base`` on the CPU, saved in a new temporary folder (the caller deletes it):
    the folder, the adapter's summary and its adapted parts. How an engine without audio-tower LoRA gets one."""
    import tempfile

    decoder = load_decoder(base, adapter, device="cpu", dtype=dtype, local_files_only=local_files_only,
                           merge_adapter=True, revision=revision, engine="generate")
    folder = Path(tempfile.mkdtemp(prefix="ovoz-merged-"))
    try:
        save_merged(decoder, folder)
    except BaseException:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise
    logger.info("merged %s into %s for vLLM: %s", adapter, base, folder)
    return folder, decoder.info.adapter_summary, decoder.info.adapted_parts


def _load_vllm(base: str | Path, adapter: str | Path | None, *, device: str | None, dtype: str | None,
               quantization: str | None, local_files_only: bool, revision: str | None, options: Any,
               started: float) -> "VLLMDecoder":
    """The vLLM backend: check vLLM, resolve the folders, merge an adapter into a temporary copy of the base (vLLM
    would drop its audio-tower part), then hand the folder to :class:`ovoz.gemma.vllm_backend.VLLMDecoder`."""
    from . import vllm_backend
    from .processor import load_processor

    options = vllm_backend.VLLMOptions.of(options)
    dtype_name = resolve_dtype(dtype)
    if quantization is not None:
        raise ConfigError(f"quantization={quantization!r} with engine='vllm': ovoz's vLLM backend serves bf16 or "
                          "float32 weights; drop --4bit.")
    vllm_backend.require_vllm(device)
    vdevice = vllm_backend.vllm_device(device)
    base_folder, adapter_folder = resolve_folders(base, adapter, local_files_only=local_files_only, revision=revision)
    config = read_config(base_folder, base)
    if "quantization_config" in config:
        raise ConfigError(f"{named('base', base)} is pre-quantized; engine='vllm' needs the full-precision base.")
    if not config.get("audio_config"):
        raise ModelLoadError(f"{named('base', base)}: this Gemma 4 model has no audio tower; use an E2B/E4B model.")
    vllm_backend.check_vision_tower(base_folder, base)

    def merge(base_dir: Path, adapter_spec: str | Path, offline: bool) -> tuple[Path, Any, Any]:
        resolved = resolve_folder(adapter_spec, kind="adapter", local_files_only=offline)
        return merge_to_temporary(base_dir, resolved, dtype=dtype_name, local_files_only=True)

    folder, owned, extra = base_folder, [], {}
    if adapter_folder is not None:
        folder, summary, parts = merge_to_temporary(base_folder, adapter_folder, dtype=dtype_name,
                                                    local_files_only=True)
        owned = [folder]
        extra = {"adapter_summary": summary, "adapted_parts": parts, "merged": True}
    processor = load_processor(folder)
    info = ModelInfo(base=str(base), adapter=str(adapter) if adapter is not None else None, device=vdevice,
                     dtype=dtype_name, quantization=None, engine="vllm", **extra)
    decoder = vllm_backend.VLLMDecoder(folder, processor, info, dtype=dtype_name, device=vdevice, options=options,
                                       merge=merge if adapter_folder is None else None, owned=owned,
                                       base_folder=base_folder)
    try:
        decoder.start()  # build the engine now: load errors belong to load()
    except BaseException:
        decoder.close()
        raise
    decoder.info = dataclasses.replace(info, load_s=round(time.perf_counter() - started, 3))
    logger.info("loaded %s%s into vLLM on %s (%s) in %.1f s", info.base, f" + {info.adapter}" if info.adapter else "",
                vdevice, dtype_name, decoder.info.load_s)
    return decoder


def _report_adapter(name: Any, info: Any) -> None:
    logger.info("adapter %s: %s", name, info.summary())
    if info.parts.get("language tower", 0) == 0 and info.parts.get("audio tower", 0) == 0:
        logger.warning("adapter %s adapts neither the language nor the audio tower: it cannot change much", name)
    elif info.parts.get("audio tower", 0) == 0:
        logger.warning(
            "adapter %s adapts the language tower only (no audio-tower LoRA weights were found)", name
        )
