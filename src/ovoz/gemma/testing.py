"""Build Gemma 4 model folders with random weights, for tests and GPU benchmarks.

No machine here can download weights, so tests run the real Gemma 4 architecture at tiny size, and speed is
measured on the full-size E4B architecture with random weights (speed does not depend on weight values).
Each folder holds what a downloaded model holds: ``config.json``, weights, a tokenizer with Gemma 4's
special tokens and chat template, the audio feature extractor's settings and ``generation_config.json``.
Shipped in the package (like lhotse's test helpers) so users and the benchmarks can build the same folders.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from . import prompt as P

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = (
    P.PAD, P.EOS, P.BOS, "<unk>", P.TURN_START, P.TURN_END,
    P.AUDIO, P.AUDIO_START, P.AUDIO_END, "<|image|>", "<|image>", "<image|>", "<|video|>",
)
"""pad=0, eos=1, bos=2 as in the real tokenizer; the others follow."""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<|turn>' + role + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}{{ '<|audio|>' }}"
    "{%- elif item['type'] == 'image' -%}{{ '<|image|>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<turn|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|turn>model\\n' }}{%- endif -%}"
)
"""Gemma 4's turn format for system/user/model messages with audio and text parts."""

LANGUAGE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
AUDIO_TARGETS = ("post", "linear_start", "linear_end", "ffw_layer_1", "ffw_layer_2", "output_proj")
EMBEDDER_TARGETS = ("embedding_projection",)
SEED_TARGET_NAMES = LANGUAGE_TARGETS + AUDIO_TARGETS + EMBEDDER_TARGETS
"""The plain name list the seed's ``adapter_config.json`` carries (it fails in stock PEFT)."""


def build_tokenizer(core: Any = None) -> Any:
    """A byte-level tokenizer (every UTF-8 text round-trips) with Gemma 4's special tokens and chat template.

    ``core``: a ``tokenizers.Tokenizer`` to wrap instead of the bytes-only one (e.g. a BPE trained on Uzbek text
    whose vocabulary starts with ``SPECIAL_TOKENS``, as :mod:`ovoz.demo.build` trains it).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if core is None:
        alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
        vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        for symbol in alphabet:
            vocab[symbol] = len(vocab)
        core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        core.decoder = decoders.ByteLevel()
    # Registered in tokenizer.json itself, so every marker stays one special token after save and reload.
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=P.BOS,
        eos_token=P.EOS,
        pad_token=P.PAD,
        unk_token="<unk>",
        extra_special_tokens={
            "audio_token": P.AUDIO,
            "boa_token": P.AUDIO_START,
            "eoa_token": P.AUDIO_END,
            "image_token": "<|image|>",
            "boi_token": "<|image>",
            "eoi_token": "<image|>",
        },
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


TINY_VISION = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
    head_dim=16, position_embedding_size=1024,
)
"""A one-layer vision tower of width 32: engines that insist on a vision tower (vLLM) load the tiny model with it."""


def model_config(tokenizer: Any, preset: Literal["tiny", "e4b"] = "tiny", *, text: dict[str, Any] | None = None,
                 audio: dict[str, Any] | None = None, vision: bool | dict[str, Any] = False) -> Any:
    """A ``Gemma4Config`` with an audio tower and (by default) no vision tower.

    ``tiny``: a few layers of width 64 (runs in milliseconds on a CPU).
    ``e4b``: the full-size E4B text and audio towers (GEMMA4.md), for speed and memory runs.
    ``text`` / ``audio``: ``Gemma4TextConfig`` / ``Gemma4AudioConfig`` fields that replace the preset's.
    ``vision``: ``True`` adds a vision tower (:data:`TINY_VISION` for ``tiny``, transformers' default size for
    ``e4b``), a dict its ``Gemma4VisionConfig`` fields. Speech never runs it; vLLM refuses a model without one.
    """
    text_overrides, audio_overrides = text or {}, audio or {}
    from transformers import Gemma4AudioConfig, Gemma4Config, Gemma4TextConfig, Gemma4VisionConfig

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("pad", P.PAD), ("eos", P.EOS), ("bos", P.BOS), ("turn_end", P.TURN_END),
        ("audio", P.AUDIO), ("boa", P.AUDIO_START), ("eoa", P.AUDIO_END),
        ("image", "<|image|>"), ("boi", "<|image>"), ("eoi", "<image|>"), ("video", "<|video|>"),
    )}
    if preset == "tiny":
        vocab = 64 * ((len(tokenizer) + 63) // 64)
        text = dict(
            vocab_size=vocab, vocab_size_per_layer_input=vocab, hidden_size=64, intermediate_size=128,
            num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1, head_dim=32, global_head_dim=64,
            hidden_size_per_layer_input=16, num_kv_shared_layers=2, sliding_window=16,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            max_position_embeddings=4096,
        )
        audio = dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=2, subsampling_conv_channels=[128, 8],  # [0] must equal the 128 mel bins
            output_proj_dims=64,
        )
    elif preset == "e4b":
        text = dict(
            vocab_size=262_144, vocab_size_per_layer_input=262_144, hidden_size=2560, intermediate_size=10240,
            num_hidden_layers=42, num_attention_heads=8, num_key_value_heads=2, head_dim=256, global_head_dim=512,
            hidden_size_per_layer_input=256, num_kv_shared_layers=18, sliding_window=512,
            final_logit_softcapping=30.0,
        )
        audio = dict(
            hidden_size=1024, num_hidden_layers=12, num_attention_heads=8, subsampling_conv_channels=[128, 32],
            output_proj_dims=1536,
        )
    else:
        raise ValueError(f"preset={preset!r}: choose 'tiny' or 'e4b'")
    text, audio = {**text, **text_overrides}, {**audio, **audio_overrides}
    common = dict(pad_token_id=ids["pad"], eos_token_id=[ids["eos"], ids["turn_end"]], bos_token_id=ids["bos"])
    if preset == "e4b":
        text.setdefault("hidden_activation", "gelu_pytorch_tanh")
    vision_config = None
    if vision:
        fields = dict(vision) if isinstance(vision, dict) else (dict(TINY_VISION) if preset == "tiny" else {})
        vision_config = Gemma4VisionConfig(**fields)
        # Soft tokens per image, as Google's checkpoints record it (vLLM reads it; transformers has no field for it).
        vision_config.default_output_length = 280
    return Gemma4Config(
        text_config=Gemma4TextConfig(**text, **common),
        audio_config=Gemma4AudioConfig(**audio),
        vision_config=vision_config,
        audio_token_id=ids["audio"], boa_token_id=ids["boa"], eoa_token_index=ids["eoa"],
        image_token_id=ids["image"], boi_token_id=ids["boi"], eoi_token_id=ids["eoi"], video_token_id=ids["video"],
        tie_word_embeddings=True,
    )


def build_random_model(config: Any, *, seed: int = 0, dtype: Any = None, device: str = "cpu",
                       widen: bool | None = None) -> Any:
    """A ``Gemma4ForConditionalGeneration`` with random weights, built directly on ``device``.

    ``widen``: scale the matrices by 4 (default: for text widths up to 256), so that greedy decoding of a tiny
    random model is decisive; ``False`` keeps transformers' initialisation (for a model that is to be trained).
    """
    import torch
    from transformers import Gemma4ForConditionalGeneration

    torch.manual_seed(seed)
    dtype = dtype or torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Gemma4ForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    if widen if widen is not None else config.text_config.hidden_size <= 256:
        # Tiny random models produce near-uniform logits; widen them so greedy decoding is decisive
        # and small weight changes (an adapter) visibly change the output.
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.dim() >= 2:
                    parameter.mul_(4.0)
    return model.eval()


def weight_bytes(preset: Literal["tiny", "e4b"] = "tiny", dtype: Any = None) -> int:
    """Bytes the random model's weights take in ``dtype`` (float32 by default), counted on the meta device."""
    import torch

    model = build_random_model(model_config(build_tokenizer(), preset), device="meta")
    size = torch.empty(0, dtype=dtype or torch.float32).element_size()
    return sum(parameter.numel() for parameter in model.parameters()) * size


def save_model_folder(
    folder: str | Path, preset: Literal["tiny", "e4b"] = "tiny", *, seed: int = 0, dtype: Any = None,
    device: str = "cpu", tokenizer: Any = None, text: dict[str, Any] | None = None,
    audio: dict[str, Any] | None = None, widen: bool | None = None, vision: bool | dict[str, Any] = False,
) -> Path:
    """Write a complete Gemma 4 audio model folder (random weights) that ``ovoz.load(base=folder)`` reads.

    ``tokenizer`` (default :func:`build_tokenizer`), ``text``/``audio``/``vision`` (see :func:`model_config`) and ``widen``
    (see :func:`build_random_model`) let other models be built the same way, e.g. the demo model.
    """
    from transformers import GenerationConfig
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    from .processor import build_processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    config = model_config(tokenizer, preset, text=text, audio=audio, vision=vision)
    model = build_random_model(config, seed=seed, dtype=dtype, device=device, widen=widen)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=config.text_config.eos_token_id,
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(folder)
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    processor.save_pretrained(folder)
    logger.info("wrote a random %s Gemma 4 model to %s", preset, folder)
    return folder


def save_adapter(
    model_folder: str | Path,
    adapter_folder: str | Path,
    *,
    style: Literal["peft", "unsloth"] = "peft",
    parts: tuple[str, ...] = ("language", "audio", "embedder"),
    rank: int = 8,
    alpha: int = 16,
    seed: int = 1,
    device: str = "cpu",
    dtype: Any = None,
) -> Path:
    """Write a LoRA adapter with random non-zero weights for the model in ``model_folder``.

    ``style="peft"`` writes the regex targets that stock PEFT needs; ``style="unsloth"`` writes the seed's
    plain name list (what Unsloth saves) while the weight keys point at the inner ``.linear`` layers.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma4ForConditionalGeneration

    from .adapter import target_regex

    torch.manual_seed(seed)
    model = Gemma4ForConditionalGeneration.from_pretrained(
        model_folder, dtype=dtype or torch.float32, device_map=device if device != "cpu" else None
    )
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=target_regex(parts),
        init_lora_weights=False,
    )
    peft_model = get_peft_model(model, config)
    adapter_folder = Path(adapter_folder)
    peft_model.save_pretrained(adapter_folder)
    if style == "unsloth":
        config_file = adapter_folder / "adapter_config.json"
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        names = ()
        if "language" in parts:
            names += LANGUAGE_TARGETS
        if "audio" in parts:
            names += AUDIO_TARGETS
        if "embedder" in parts:
            names += EMBEDDER_TARGETS
        saved["target_modules"] = sorted(names)
        saved["task_type"] = "CAUSAL_LM"  # as Unsloth's get_peft_model writes it
        config_file.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    return adapter_folder
