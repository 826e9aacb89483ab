"""Decode attention on the key/value heads directly, registered with transformers' ``AttentionInterface``.

Gemma 4 E4B has 8 query heads per 2 key/value heads. transformers' SDPA path copies keys and values once per query
head (``repeat_kv``) before attending, which at batch 128 moved tens of GB per decode step. For a single-token query
:func:`packed_gqa_attention` groups the query heads of each KV head instead (head h reads KV head h // groups) and
calls SDPA once on the shared keys/values. Every other call goes to transformers' own SDPA function unchanged.

The function is registered under its own name (:data:`PACKED_SDPA`), never over "sdpa", and a model uses it only
inside :func:`packed_attention`, which selects it on that model's text config and restores the previous choice.
(Tried and reverted: two bf16 matmuls and a softmax instead of SDPA here: 6.4 instead of 7.0 ms a batch-1 step, no
gain at batch 128, and the scores rounded to bf16 before the softmax, where SDPA keeps float32.)
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .. import compat

PACKED_SDPA = "ovoz_packed_sdpa"
TRITON_DECODE = "ovoz_triton_decode"


def packed_gqa_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                         scaling: float | None = None, **kwargs: Any):
    """transformers' SDPA attention signature; single-token queries attend on the KV heads directly."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_length, dim = query.shape
    kv_heads = key.shape[1]
    if q_length != 1 or heads == kv_heads or kwargs.get("output_attentions"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    output = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=attention_mask,
                                                              scale=scaling)
    return output.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def triton_decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                            dropout: float = 0.0, scaling: float | None = None, **kwargs: Any):
    """transformers' SDPA attention signature; single-token queries through ovoz's Triton decode kernel
    (:func:`ovoz.gemma.kernels.triton_attention.decode_attention`: each KV head's keys read once for its query heads)."""
    if query.shape[2] != 1 or kwargs.get("output_attentions") or not query.is_cuda:
        return packed_gqa_attention(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                    **kwargs)
    from .triton_attention import decode_attention

    output = decode_attention(query, key, value, attention_mask, scale=scaling)
    return output.transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def packed_attention(text_config: Any, triton: bool = False) -> Iterator[None]:
    """While active, the model owning ``text_config`` attends through :func:`packed_gqa_attention` (or, with
    ``triton``, :func:`triton_decode_attention`) for its single-token decode steps.

    Only a config on SDPA is switched (the packed path reproduces SDPA's arithmetic); eager stays eager."""
    if compat.get_attention(text_config) != "sdpa":
        yield
        return
    name, function = (TRITON_DECODE, triton_decode_attention) if triton else (PACKED_SDPA, packed_gqa_attention)
    compat.register_attention(name, function)
    with compat.attention_implementation(text_config, name):
        yield
