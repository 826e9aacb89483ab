"""How many slots (rows decoded together) the static engine can hold in the GPU memory that is free.

The engine's memory is, per slot, its share of the preallocated KV cache and of one decode step's transients,
plus the transients of one prefill call over a group of new clips (the audio tower and the language model over
whole prompts). :func:`auto_batch_size` solves for the largest power of two that fits; :func:`engine_memory`
gives the parts, so a caller can log them.

The KV term is exact (it is what the engine allocates). The transient terms are upper estimates counted from the
tensors transformers' Gemma 4 forward keeps alive at its peak (listed at each constant below), not measurements:
a measured peak (``torch.cuda.max_memory_allocated`` around one prefill) should replace them where it is lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_SLOTS = 512
"""The largest batch :func:`auto_batch_size` returns."""

RESERVE_BYTES = 1 << 30
"""Fixed headroom: cuBLAS workspaces, CUDA graph bookkeeping, allocator rounding."""

SAFETY = 0.10
"""Share of the free memory left unplanned (fragmentation, the estimates' error)."""

POSITION_SLACK = 2
"""Cache positions beyond ``audio + prompt + new tokens``: the engine's extra position and its garbage column."""

FRAMES_PER_AUDIO_TOKEN = 4
"""Gemma 4's audio tower: 10 ms mel frames, two stride-2 convolutions, one token per 40 ms."""

MEL_BINS = 128
"""Mel bins of Gemma 4's feature extractor (the first convolution's input width)."""

CONV_COPIES = 4
"""Live copies of the first subsampling convolution's output at its peak: the convolution, the layer norm, the
ReLU, the ``contiguous`` permute (each ``[clips, channels, frames / 2, bins / 2]`` in the model dtype)."""

LOGIT_COPIES = 3
"""float32 ``[rows, vocab]`` tensors alive when a token is picked: the logits, the soft-capped logits, their
log-softmax."""


@dataclass(frozen=True)
class EngineMemory:
    """Bytes the static engine needs: ``per_slot`` for each slot, ``per_prefill_clip`` for each clip of one
    prefill call, ``reserve`` once. Parts are kept for logging."""

    kv_per_slot: int
    decode_per_slot: int
    prefill_per_clip: int
    audio_per_clip: int
    reserve: int

    @property
    def per_slot(self) -> int:
        return self.kv_per_slot + self.decode_per_slot

    @property
    def per_prefill_clip(self) -> int:
        return self.prefill_per_clip + self.audio_per_clip

    def total(self, slots: int, prefill_clips: int) -> int:
        return slots * self.per_slot + min(slots, prefill_clips) * self.per_prefill_clip + self.reserve


def _text(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _layer_shapes(text: Any) -> list[tuple[int, int]]:
    """``(kv heads, head_dim)`` of every layer (Gemma 4's global layers are wider: ``global_head_dim``)."""
    n_layers = text.num_hidden_layers
    per_layer = getattr(text, "per_layer_config", None)
    if per_layer is not None:
        return [(per_layer[i].num_key_value_heads, per_layer[i].head_dim) for i in range(n_layers)]
    layer_types = getattr(text, "layer_types", None) or ["sliding_attention"] * n_layers
    wide = getattr(text, "global_head_dim", None) or text.head_dim
    return [
        (text.num_key_value_heads, wide if kind == "full_attention" else text.head_dim) for kind in layer_types
    ]


def _layers(text: Any) -> list[tuple[int, int]]:
    """``(kv heads, head_dim)`` of every layer that owns a KV cache (not one of the last ``num_kv_shared_layers``)."""
    owners = text.num_hidden_layers - (getattr(text, "num_kv_shared_layers", 0) or 0)
    return _layer_shapes(text)[:owners]


def kv_cache_bytes_per_slot(text_config: Any, positions: int, dtype_bytes: int) -> int:
    """Keys and values of one slot: ``dtype_bytes * positions * sum over cache-owning layers of 2 * kv_heads *
    head_dim`` (Gemma 4's KV-shared layers read an earlier layer's cache and own none)."""
    text = _text(text_config)
    return dtype_bytes * positions * sum(2 * heads * dim for heads, dim in _layers(text))


def engine_memory(
    text_config: Any,
    max_audio_tokens: int,
    prompt_tokens: int,
    max_new_tokens: int,
    dtype_bytes: int = 2,
    *,
    audio_config: Any = None,
    reserve_bytes: int = RESERVE_BYTES,
) -> EngineMemory:
    """The parts of the engine's memory for one configuration (see :func:`auto_batch_size` for the formula)."""
    text = _text(text_config)
    if audio_config is None:
        from transformers import Gemma4AudioConfig

        audio_config = Gemma4AudioConfig()
    b = dtype_bytes
    positions = max_audio_tokens + prompt_tokens + max_new_tokens + POSITION_SLACK
    layers = _layers(text)
    shapes = _layer_shapes(text)
    max_dim = max(dim for _, dim in shapes)
    heads, kv_heads = text.num_attention_heads, max(h for h, _ in shapes)
    hidden, inner = text.hidden_size, text.intermediate_size * (2 if getattr(text, "use_double_wide_mlp", False) else 1)
    ple = text.num_hidden_layers * (getattr(text, "hidden_size_per_layer_input", 0) or 0)
    vocab = text.vocab_size
    logits = LOGIT_COPIES * 4 * vocab

    # One layer's transients per token: the residual stream and its float32 norm copies, the MLP's gate, up and
    # product, q/k/v through projection, norm and rotary.
    layer_token = hidden * (3 * b + 2 * 4) + 3 * inner * b + 3 * (heads + 2 * kv_heads) * max_dim * b
    # The per-layer inputs (looked up, projected, normed in float32, summed): L * d_ple values a token.
    ple_token = ple * (3 * b + 2 * 4)
    decode = logits + ple_token + layer_token + heads * positions * 4 * 2  # scores + softmax over the cache

    tokens = max_audio_tokens + prompt_tokens
    masks = 2 * tokens * tokens * (1 + b)  # full and sliding [q, k] masks, bool and their additive form
    scores = heads * tokens * tokens * 4 * 2  # SDPA's math backend (Gemma 4's 512-wide global heads) worst case
    store = sum(2 * h * d * b for h, d in layers[-2:])  # the layers whose keys/values the shared layers reuse
    prefill = tokens * (ple_token + layer_token + 2 * hidden * b + store) + masks + scores + logits

    frames = max_audio_tokens * FRAMES_PER_AUDIO_TOKEN
    channels = audio_config.subsampling_conv_channels[0]
    conv = CONV_COPIES * b * channels * (frames // 2) * (MEL_BINS // 2) + b * frames * MEL_BINS
    audio_hidden = audio_config.hidden_size
    conformer = max_audio_tokens * (4 * audio_hidden * (3 * b + 4) + 2 * audio_hidden * b)
    return EngineMemory(
        kv_per_slot=kv_cache_bytes_per_slot(text, positions, b),
        decode_per_slot=decode,
        prefill_per_clip=prefill,
        audio_per_clip=max(conv, conformer),
        reserve=reserve_bytes,
    )


def auto_batch_size(
    free_bytes: int,
    text_config: Any,
    max_audio_tokens: int,
    prompt_tokens: int,
    max_new_tokens: int,
    dtype_bytes: int = 2,
    *,
    audio_config: Any = None,
    prefill_clips: int | None = None,
    safety: float = SAFETY,
    reserve_bytes: int = RESERVE_BYTES,
    max_slots: int = MAX_SLOTS,
) -> int:
    """The static engine's slot count that ``free_bytes`` allow, a power of two in ``[1, max_slots]``.

    ``free_bytes``: the device memory free with the model loaded (``torch.cuda.mem_get_info()[0]``, plus what
    PyTorch's allocator holds unused). ``text_config``: Gemma 4's text config (or the whole config).
    ``max_audio_tokens``, ``prompt_tokens`` (the prompt's text tokens and margin), ``max_new_tokens``: the
    engine's sizes. ``dtype_bytes``: bytes of the cache and activations dtype (2 for bfloat16). ``audio_config``:
    the audio tower's (None: Gemma 4's defaults, E4B's). ``prefill_clips``: the most clips one prefill call takes
    (None: as many as there are slots, as the engine does on its first call).

    With ``P = max_audio_tokens + prompt_tokens + max_new_tokens + 2`` cache positions, ``T = max_audio_tokens +
    prompt_tokens`` prompt tokens and ``b = dtype_bytes``, the engine needs for ``S`` slots

        S * (kv + decode) + min(S, prefill_clips) * (prefill + audio) + reserve  <=  free_bytes * (1 - safety)

    * ``kv = b * P * sum over cache-owning layers of 2 * kv_heads * head_dim`` (exact: the engine's buffers);
    * ``decode``: one decode step's transients a row: 3 float32 vocab-wide rows (logits, soft cap, log-softmax),
      the per-layer inputs and one layer's activations of a token, the scores over ``P`` positions;
    * ``prefill``: per clip, ``T`` tokens of per-layer inputs and one layer's activations, two ``T x T`` masks,
      worst-case attention scores (``heads x T x T`` float32, twice), the logits of the last position;
    * ``audio``: per clip, the larger of the first subsampling convolution's live copies
      (:data:`CONV_COPIES` x channels x frames/2 x bins/2) and the conformer's activations over the audio tokens;
    * ``reserve``: :data:`RESERVE_BYTES`; ``safety``: :data:`SAFETY`.

    The largest power of two ``S`` that satisfies this is returned (1 when none does: the engine then runs one
    row and may still not fit).
    """
    memory = engine_memory(text_config, max_audio_tokens, prompt_tokens, max_new_tokens, dtype_bytes,
                           audio_config=audio_config, reserve_bytes=reserve_bytes)
    budget = free_bytes * (1.0 - safety)
    slots = 1
    while slots * 2 <= max(1, max_slots):
        candidate = slots * 2
        clips = candidate if prefill_clips is None else max(1, prefill_clips)
        if memory.total(candidate, clips) > budget:
            break
        slots = candidate
    return slots
