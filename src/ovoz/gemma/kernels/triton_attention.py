"""Decode attention as one hand-written Triton kernel: one query position, the query heads of a KV head reading its
keys and values once, with SDPA's arithmetic (the wrapper conventions of :mod:`.triton_ops`: optional ``out=``,
no allocation but the output and float32 partial sums, no host synchronization, SDPA where the kernel does not
apply). Shares :mod:`.triton_ops`' Triton import, availability and helpers."""

from typing import Any

import torch

from .triton_ops import INTERPRET, _device_guard, _jit, _output, _runs_here, tl, triton

__all__ = ["TARGET_PROGRAMS", "decode_attention"]


@_jit
def _decode_attention_kernel(
    q_ptr, k_ptr, v_ptr, mask_ptr, out_ptr, m_ptr, l_ptr, acc_ptr, width, n_kv_heads, scale, split_len,
    sqb, sqh, skb, skh, skn, svb, svh, svn, smb, smh, smn, sob, soh,
    GROUPS: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    MASK: tl.constexpr, SPLIT: tl.constexpr, IEEE: tl.constexpr,
):
    """One (batch row, KV head, key range): the KV head's query rows attend to its keys, each key read once.
    MASK: 0 none, 1 bool (nonzero = attend), 2 additive. SPLIT: write partial (max, sum, acc) for the combine.
    IEEE: float32 products in full precision (float32 inputs, and the interpreter, whose bfloat16 dot is wrong)."""
    bh = tl.program_id(0)
    split = tl.program_id(1)
    b = (bh // n_kv_heads).to(tl.int64)
    kvh = bh % n_kv_heads
    g = tl.arange(0, G_PAD)
    d = tl.arange(0, BLOCK_D)
    g_ok, d_ok = g < GROUPS, d < D
    heads = kvh * GROUPS + g
    q = tl.load(q_ptr + b * sqb + heads[:, None] * sqh + d[None, :], mask=g_ok[:, None] & d_ok[None, :], other=0.0)
    if IEEE:
        q = q.to(tl.float32)
    start = split * split_len
    end = tl.minimum(start + split_len, width)
    m_i = tl.full([G_PAD], float("-inf"), tl.float32)
    l_i = tl.zeros([G_PAD], tl.float32)
    acc = tl.zeros([G_PAD, BLOCK_D], tl.float32)
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < end
        kv_mask = n_ok[:, None] & d_ok[None, :]
        k = tl.load(k_ptr + b * skb + kvh * skh + n[:, None].to(tl.int64) * skn + d[None, :], mask=kv_mask, other=0.0)
        if IEEE:
            k = k.to(tl.float32)
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
        else:
            s = tl.dot(q, tl.trans(k)) * scale
        visible = g_ok[:, None] & n_ok[None, :]
        if MASK == 1:
            at = mask_ptr + b * smb + heads[:, None] * smh + n[None, :] * smn
            visible = visible & (tl.load(at, mask=visible, other=0) != 0)
        if MASK == 2:
            at = mask_ptr + b * smb + heads[:, None] * smh + n[None, :] * smn
            s = s + tl.load(at, mask=visible, other=0.0).to(tl.float32)
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(s - m_safe[:, None])
        alpha = tl.exp(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_ptr + b * svb + kvh * svh + n[:, None].to(tl.int64) * svn + d[None, :], mask=kv_mask, other=0.0)
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p, v.to(tl.float32), input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    if SPLIT:
        row = (bh * tl.num_programs(1) + split).to(tl.int64) * G_PAD + g
        tl.store(m_ptr + row, m_i)
        tl.store(l_ptr + row, l_i)
        tl.store(acc_ptr + row[:, None] * BLOCK_D + d[None, :], acc)
    else:
        out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
        at = out_ptr + b * sob + heads[:, None] * soh + d[None, :]
        tl.store(at, out.to(out_ptr.dtype.element_ty), mask=g_ok[:, None] & d_ok[None, :])


@_jit
def _decode_attention_combine(
    m_ptr, l_ptr, acc_ptr, out_ptr, n_splits, n_kv_heads, sob, soh,
    GROUPS: tl.constexpr, G_PAD: tl.constexpr, D: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """One query row: the key ranges' partial softmax sums merged (log-sum-exp), normalized, written."""
    row = tl.program_id(0)  # (batch row * KV heads + KV head) * GROUPS + group
    bh, g = row // GROUPS, row % GROUPS
    d = tl.arange(0, BLOCK_D)
    m_all = tl.full([1], float("-inf"), tl.float32)
    l_all = tl.zeros([1], tl.float32)
    acc = tl.zeros([BLOCK_D], tl.float32)
    for split in range(n_splits):
        at = (bh * n_splits + split).to(tl.int64) * G_PAD + g
        m_s = tl.load(m_ptr + at + tl.arange(0, 1))
        m_new = tl.maximum(m_all, m_s)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        w_old, w_new = tl.exp(m_all - m_safe), tl.exp(m_s - m_safe)
        l_all = l_all * w_old + tl.load(l_ptr + at + tl.arange(0, 1)) * w_new
        acc = acc * w_old + tl.load(acc_ptr + at * BLOCK_D + d) * w_new
        m_all = m_new
    out = acc / tl.where(l_all == 0.0, 1.0, l_all)
    b, kvh = bh // n_kv_heads, bh % n_kv_heads
    at = out_ptr + b.to(tl.int64) * sob + (kvh * GROUPS + g) * soh + d
    tl.store(at, out.to(out_ptr.dtype.element_ty), mask=d < D)


def _decode_attention_torch(query: Any, key: Any, value: Any, attn_mask: Any, scale: Any) -> Any:
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask, scale=scale, enable_gqa=query.shape[1] != key.shape[1]
    )


TARGET_PROGRAMS = 256
"""Decode attention splits each KV head's keys into ranges until about this many programs run (two per SM of an
H100/H200), so a batch-1 step does not run on two SMs."""


def decode_attention(query: Any, key: Any, value: Any, attn_mask: Any = None, scale: float | None = None, *,
                     out: Any = None) -> Any:
    """``F.scaled_dot_product_attention(query, key, value, attn_mask, scale=scale, enable_gqa=True)`` for one query
    position: ``query [batch, heads, 1, dim]``, ``key``/``value [batch, kv_heads, width, dim]`` (views of a cache
    are fine: the last dimension contiguous), query head ``h`` reading KV head ``h // (heads // kv_heads)``.
    Each KV head's keys and values are read once for all its query heads (Gemma 4 E4B: 4 per KV head).

    ``attn_mask``: None, bool (True = attend) or additive, broadcastable to ``[batch, heads, 1, width]``. Scores,
    softmax and sums are float32; the probabilities are rounded to the value dtype before the value product (as
    SDPA's fused kernels do). A query that sees no key gets zeros (SDPA's math path gives NaN). The output is
    ``[batch, heads, 1, dim]``, contiguous. Falls back to SDPA outside these shapes (dim 16-512, up to 16 query
    heads per KV head) and under autograd."""
    batch, heads, q_len, dim = query.shape
    kv_heads, width = key.shape[1], key.shape[2]
    tensors = (query, key, value)
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        tensors += (attn_mask,)
    if (
        not _runs_here(*tensors) or q_len != 1 or key.dim() != 4 or key.shape != value.shape or width == 0
        or key.shape[0] != batch or key.shape[3] != dim or heads % kv_heads or heads // kv_heads > 16
        or not 16 <= dim <= 512 or len({query.dtype, key.dtype, value.dtype}) != 1
        or (attn_mask is not None and attn_mask.dim() > 4)
    ):
        result = _decode_attention_torch(query, key, value, attn_mask, scale)
        return result if out is None else out.copy_(result)
    if attn_mask is not None:
        try:
            mask = attn_mask.reshape((1,) * (4 - attn_mask.dim()) + tuple(attn_mask.shape))
            mask = mask.expand(batch, heads, 1, width)
        except RuntimeError:
            result = _decode_attention_torch(query, key, value, attn_mask, scale)
            return result if out is None else out.copy_(result)
        mask = mask.view(torch.uint8) if mask.dtype == torch.bool else mask
        mode, (smb, smh, _, smn) = (1 if attn_mask.dtype == torch.bool else 2), mask.stride()
    else:
        mask, mode, smb, smh, smn = key, 0, 0, 0, 0
    key, value, query = (t if t.stride(-1) == 1 else t.contiguous() for t in (key, value, query))
    result = _output(out, (batch, heads, 1, dim), query.dtype, query)
    groups = heads // kv_heads
    block_d = triton.next_power_of_2(dim)
    block_n = 32 if block_d > 256 else 64
    blocks = triton.cdiv(width, block_n)
    splits = min(blocks, max(1, triton.cdiv(TARGET_PROGRAMS, batch * kv_heads)), 64)
    split_len = triton.cdiv(blocks, splits) * block_n
    splits = triton.cdiv(width, split_len)
    common = {"GROUPS": groups, "G_PAD": 16, "D": dim, "BLOCK_D": block_d}
    if splits > 1:
        m = torch.empty((batch * kv_heads, splits, 16), dtype=torch.float32, device=query.device)
        l_sum = torch.empty_like(m)
        acc = torch.empty((batch * kv_heads, splits, 16, block_d), dtype=torch.float32, device=query.device)
    else:
        m = l_sum = acc = result
    scale = 1.0 / dim**0.5 if scale is None else float(scale)
    with _device_guard(query):
        _decode_attention_kernel[(batch * kv_heads, splits)](
            query, key, value, mask, result, m, l_sum, acc, width, kv_heads, scale, split_len,
            query.stride(0), query.stride(1), key.stride(0), key.stride(1), key.stride(2),
            value.stride(0), value.stride(1), value.stride(2), smb, smh, smn, result.stride(0), result.stride(1),
            BLOCK_N=block_n, MASK=mode, SPLIT=splits > 1, IEEE=query.dtype == torch.float32 or INTERPRET,
            num_warps=4 if block_d <= 256 else 8, num_stages=2, **common,
        )
        if splits > 1:
            _decode_attention_combine[(batch * kv_heads * groups,)](
                m, l_sum, acc, result, splits, kv_heads, result.stride(0), result.stride(1),
                num_warps=4, **common,
            )
    return result
