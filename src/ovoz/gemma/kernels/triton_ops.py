"""Hand-written Triton kernels for Gemma 4's small elementwise work: RMSNorm, ``gelu_tanh(gate) * up`` and the
rotary embedding, each one kernel with the arithmetic of transformers' Gemma 4 code. Decode attention (one query
position, the query heads of a KV head reading its keys and values once, SDPA's arithmetic) is in
:mod:`.triton_attention`, on this module's helpers.

Why Triton by hand rather than torch.compile: Triton compiles a kernel once per specialization (dtype, flags,
block size) and keeps the binary in its on-disk cache (``~/.triton/cache``, or ``TRITON_CACHE_DIR``), so a later
process loads it instead of compiling; torch.compile of the same functions traces and compiles again in every
new process (10-25 s on the H200). ``benchmarks/bench_kernels.py`` measures both starts, cold and warm.

Every wrapper

* takes the arguments of the function it replaces (plus an optional ``out=`` of the result's shape and dtype),
  float32/bfloat16/float16 inputs of any leading shape whose last dimension is contiguous;
* computes in float32 inside and rounds once to the output dtype (the originals round some intermediates to the
  input dtype on the way; the difference is within the output dtype's rounding);
* allocates nothing but its output (decode attention: and its float32 partial sums when it splits the keys) and
  never synchronizes with the host, so it can be captured in a CUDA graph;
* falls back to the original torch arithmetic where the kernel does not apply: a device Triton cannot run on
  (:func:`available`), autograd (inputs needing gradients: the kernels have no backward), shapes the kernel
  does not cover (broadcasting the original allows beyond the kernel's, more than four dimensions, an odd
  rotary width). A leading-dimension layout that cannot be viewed as rows is copied first.

With ``TRITON_INTERPRET=1`` set before this module is imported, the kernels run on CPU tensors through Triton's
interpreter (slow; used by the tests). The interpreter gets bfloat16 arithmetic wrong but loads, stores and
float32 arithmetic right, which is all these kernels do.
"""

import contextlib
import functools
import logging
import os
from typing import Any

import torch

try:
    import triton
    import triton.language as tl

    _jit = triton.jit
except ImportError:  # the wrappers fall back to torch arithmetic; available() says False
    triton = None

    class _NoTriton:
        constexpr = None

    tl = _NoTriton()

    def _jit(fn):
        return fn


logger = logging.getLogger(__name__)

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
"""Triton's interpreter was requested when this module was imported: the kernels run on CPU tensors."""

_FLOATS = (torch.float32, torch.bfloat16, torch.float16)
_BLOCK_ELEMENTS = 4096  # elements one program handles at most per step (rows x columns)
_MAX_ONE_PASS = 16384  # widest row the RMSNorm keeps in registers; wider rows take two passes

__all__ = ["INTERPRET", "apply_rotary", "available", "gelu_tanh_mul", "rms_norm"]


def available(device: Any) -> bool:
    """Whether the Triton kernels run on ``device``: CUDA of compute capability 7.0 or newer (Triton's floor)
    with Triton installed, or the CPU under Triton's interpreter (:data:`INTERPRET`)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else device
    return _available(device)


@functools.cache
def _available(device: Any) -> bool:
    if triton is None:
        return False
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return torch.cuda.get_device_capability(device) >= (7, 0)
    return device.type == "cpu" and INTERPRET


def _runs_here(*tensors: Any) -> bool:
    """The kernels apply: a device they run on, float dtypes, and no autograd to record."""
    first = tensors[0]
    if any(t.device != first.device or t.dtype not in _FLOATS for t in tensors):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return available(first.device)


def _device_guard(t: Any) -> Any:
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


def _rows(t: Any) -> Any:
    """``t`` as a 2-D ``[rows, last]`` view with a contiguous last dimension (a copy where no view exists)."""
    flat = t.reshape(-1, t.shape[-1]) if t.dim() != 2 else t
    return flat if flat.stride(-1) == 1 or flat.shape[-1] == 1 else flat.contiguous()


def _output(out: Any, shape: Any, dtype: Any, like: Any) -> Any:
    if out is None:
        return torch.empty(shape, dtype=dtype, device=like.device)
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or out.device != like.device or not out.is_contiguous():
        raise ValueError(
            f"out: got a {tuple(out.shape)} {out.dtype} tensor on {out.device} (contiguous: {out.is_contiguous()}); "
            f"pass a contiguous {tuple(shape)} {dtype} tensor on {like.device}, or none"
        )
    return out


def _block_rows(block_cols: int, rows: int) -> int:
    return max(1, min(_BLOCK_ELEMENTS // block_cols, triton.next_power_of_2(max(rows, 1))))


def _warps(elements: int) -> int:
    return 4 if elements <= 2048 else 8 if elements <= 8192 else 16


# --------------------------------------------------------------------------------------------------- RMSNorm
@_jit
def _rms_norm_kernel(
    x_ptr, w_ptr, out_ptr, n_rows, n_cols, x_row_stride, eps,
    HAS_WEIGHT: tl.constexpr, ONE_PASS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < n_rows
    rows = rows.to(tl.int64)
    x_rows = x_ptr + rows[:, None] * x_row_stride
    out_rows = out_ptr + rows[:, None] * n_cols
    if ONE_PASS:
        cols = tl.arange(0, BLOCK_N)
        mask = row_ok[:, None] & (cols < n_cols)[None, :]
        x = tl.load(x_rows + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        scale = tl.rsqrt(tl.sum(x * x, axis=1) / n_cols + eps)
        y = x * scale[:, None]
        if HAS_WEIGHT:
            y = y * tl.load(w_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)[None, :]
        tl.store(out_rows + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)
    else:
        total = tl.zeros([BLOCK_M], dtype=tl.float32)
        for start in range(0, n_cols, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            mask = row_ok[:, None] & (cols < n_cols)[None, :]
            x = tl.load(x_rows + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            total += tl.sum(x * x, axis=1)
        scale = tl.rsqrt(total / n_cols + eps)
        for start in range(0, n_cols, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            mask = row_ok[:, None] & (cols < n_cols)[None, :]
            y = tl.load(x_rows + cols[None, :], mask=mask, other=0.0).to(tl.float32) * scale[:, None]
            if HAS_WEIGHT:
                y = y * tl.load(w_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)[None, :]
            tl.store(out_rows + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


def _rms_norm_torch(x: Any, weight: Any, eps: float) -> Any:
    from .reference import rms_norm as reference  # the one torch statement of Gemma 4's arithmetic

    return reference(x, weight, eps)


def rms_norm(x: Any, weight: Any, eps: float, *, out: Any = None) -> Any:
    """``Gemma4RMSNorm.forward``: float32 inside, ``x * (mean(x^2, -1) + eps)^-0.5 * weight``, cast to ``x``'s
    dtype. ``weight``: ``[x.shape[-1]]`` (any float dtype) or None (the norm without scale)."""
    width = x.shape[-1]
    checked = (x,) if weight is None else (x, weight)
    if (
        not _runs_here(*checked)
        or x.numel() == 0
        or (weight is not None and (weight.dim() != 1 or weight.shape[0] != width))
    ):
        result = _rms_norm_torch(x, weight, eps)
        return result if out is None else out.copy_(result)
    rows = _rows(x)
    result = _output(out, x.shape, x.dtype, x)
    w = x if weight is None else weight.contiguous()
    one_pass = triton.next_power_of_2(width) <= _MAX_ONE_PASS
    block_n = triton.next_power_of_2(width) if one_pass else _BLOCK_ELEMENTS
    block_m = _block_rows(block_n, rows.shape[0]) if one_pass else 1
    grid = (triton.cdiv(rows.shape[0], block_m),)
    with _device_guard(x):
        _rms_norm_kernel[grid](
            rows, w, result, rows.shape[0], width, rows.stride(0), float(eps),
            HAS_WEIGHT=weight is not None, ONE_PASS=one_pass, BLOCK_M=block_m, BLOCK_N=block_n,
            num_warps=_warps(block_m * block_n),
        )
    return result


# --------------------------------------------------------------------------------------------------- GELU * up
@_jit
def _gelu_tanh_mul_kernel(
    gate_ptr, up_ptr, out_ptr, n_rows, n_cols, gate_row_stride, up_row_stride,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    rows = rows.to(tl.int64)
    g = tl.load(gate_ptr + rows[:, None] * gate_row_stride + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    u = tl.load(up_ptr + rows[:, None] * up_row_stride + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    # 0.5 * g * (1 + tanh(z)) == g * sigmoid(2 z), z = sqrt(2 / pi) * (g + 0.044715 g^3)
    z = 0.7978845608028654 * (g + 0.044715 * g * g * g)
    y = g / (1.0 + tl.exp(-2.0 * z)) * u
    tl.store(out_ptr + rows[:, None] * n_cols + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


def _gelu_tanh_mul_torch(gate: Any, up: Any) -> Any:
    from .reference import gelu_tanh_mul as reference

    return reference(gate, up)


def gelu_tanh_mul(gate: Any, up: Any, *, out: Any = None) -> Any:
    """``GELUTanh(gate) * up`` as Gemma 4's MLP computes it (``F.gelu(gate, approximate="tanh") * up``), float32
    inside; the output dtype is the promotion of the two inputs'. ``gate`` and ``up`` have one shape."""
    if not _runs_here(gate, up) or gate.shape != up.shape or gate.numel() == 0:
        result = _gelu_tanh_mul_torch(gate, up)
        return result if out is None else out.copy_(result)
    g, u = _rows(gate), _rows(up)
    result = _output(out, gate.shape, torch.promote_types(gate.dtype, up.dtype), gate)
    n_rows, n_cols = g.shape
    block_n = min(triton.next_power_of_2(n_cols), 1024)
    block_m = _block_rows(block_n, n_rows)
    grid = (triton.cdiv(n_rows, block_m), triton.cdiv(n_cols, block_n))
    with _device_guard(gate):
        _gelu_tanh_mul_kernel[grid](
            g, u, result, n_rows, n_cols, g.stride(0), u.stride(0),
            BLOCK_M=block_m, BLOCK_N=block_n, num_warps=_warps(block_m * block_n),
        )
    return result


# --------------------------------------------------------------------------------------------------- rotary
@_jit
def _rotary_kernel(
    x_ptr, cos_ptr, sin_ptr, out_ptr, n_rows, size1, size2, half,
    sx0, sx1, sx2, sc0, sc1, sc2, ss0, ss1, ss2,
    BLOCK_M: tl.constexpr, BLOCK_H: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_H)
    mask = (rows < n_rows)[:, None] & (cols < half)[None, :]
    rows = rows.to(tl.int64)
    i2 = rows % size2
    i1 = (rows // size2) % size1
    i0 = rows // (size2 * size1)
    x_at = (i0 * sx0 + i1 * sx1 + i2 * sx2)[:, None] + cols[None, :]
    c_at = (i0 * sc0 + i1 * sc1 + i2 * sc2)[:, None] + cols[None, :]
    s_at = (i0 * ss0 + i1 * ss1 + i2 * ss2)[:, None] + cols[None, :]
    x1 = tl.load(x_ptr + x_at, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + x_at + half, mask=mask, other=0.0).to(tl.float32)
    c1 = tl.load(cos_ptr + c_at, mask=mask, other=0.0).to(tl.float32)
    c2 = tl.load(cos_ptr + c_at + half, mask=mask, other=0.0).to(tl.float32)
    s1 = tl.load(sin_ptr + s_at, mask=mask, other=0.0).to(tl.float32)
    s2 = tl.load(sin_ptr + s_at + half, mask=mask, other=0.0).to(tl.float32)
    # x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1)
    out_at = rows[:, None] * (2 * half) + cols[None, :]
    dtype = out_ptr.dtype.element_ty
    tl.store(out_ptr + out_at, (x1 * c1 - x2 * s1).to(dtype), mask=mask)
    tl.store(out_ptr + out_at + half, (x2 * c2 + x1 * s2).to(dtype), mask=mask)


def _rotate_half(x: Any) -> Any:
    return torch.cat((-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]), dim=-1)


def _apply_rotary_torch(x: Any, cos: Any, sin: Any, unsqueeze_dim: int) -> Any:
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return (x * cos) + (_rotate_half(x) * sin)


def _as_4d(t: Any) -> Any:
    return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape)) if t.dim() < 4 else t


def apply_rotary(x: Any, cos: Any, sin: Any, unsqueeze_dim: int = 1, *, out: Any = None) -> Any:
    """transformers' Gemma 4 ``apply_rotary_pos_emb(x, cos, sin, unsqueeze_dim=1)``: ``cos``/``sin`` get a
    dimension at ``unsqueeze_dim`` and broadcast against ``x``; the result is ``x * cos + rotate_half(x) * sin``
    (``rotate_half(x) = cat(-x2, x1)`` of ``x``'s two halves), float32 inside, in the promoted dtype of the three.

    The text model calls it as ``apply_rotary_pos_emb(x, cos, sin, unsqueeze_dim=2)`` with ``x`` of
    ``[batch, seq, heads, head_dim]`` and ``cos``/``sin`` of ``[batch, seq, head_dim]``."""
    if not _runs_here(x, cos, sin) or x.numel() == 0 or x.shape[-1] % 2:
        return _fallback_rotary(x, cos, sin, unsqueeze_dim, out)
    cos_u, sin_u = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    try:
        shape = torch.broadcast_shapes(x.shape, cos_u.shape, sin_u.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape or x.dim() > 4:  # the result would be larger than x, or an odd layout: the original
        return _fallback_rotary(x, cos, sin, unsqueeze_dim, out)
    x4 = _as_4d(x)
    c4, s4 = _as_4d(cos_u.expand(x.shape)), _as_4d(sin_u.expand(x.shape))
    if any(t.stride(-1) != 1 for t in (x4, c4, s4)):
        x4, c4, s4 = (t if t.stride(-1) == 1 else t.contiguous() for t in (x4, c4, s4))
    result = _output(out, x.shape, torch.promote_types(torch.promote_types(x.dtype, cos.dtype), sin.dtype), x)
    size0, size1, size2, width = x4.shape
    n_rows, half = size0 * size1 * size2, width // 2
    block_h = triton.next_power_of_2(half)
    block_m = _block_rows(2 * block_h, n_rows)
    grid = (triton.cdiv(n_rows, block_m),)
    with _device_guard(x):
        _rotary_kernel[grid](
            x4, c4, s4, result, n_rows, size1, size2, half,
            *x4.stride()[:3], *c4.stride()[:3], *s4.stride()[:3],
            BLOCK_M=block_m, BLOCK_H=block_h, num_warps=_warps(block_m * block_h),
        )
    return result


def _fallback_rotary(x: Any, cos: Any, sin: Any, unsqueeze_dim: int, out: Any) -> Any:
    result = _apply_rotary_torch(x, cos, sin, unsqueeze_dim)
    return result if out is None else out.copy_(result)
