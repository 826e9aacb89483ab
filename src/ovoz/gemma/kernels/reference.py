"""Gemma 4's elementwise arithmetic written once in torch: what the fused kernels (:mod:`.fused`) compile and what
the Triton kernels (:mod:`.triton_ops`) fall back to where they do not apply. Both import it from here."""

from __future__ import annotations

from typing import Any


def rms_norm(x: Any, weight: Any, eps: float) -> Any:
    """``Gemma4RMSNorm`` arithmetic: float32 inside, ``x * (mean(x^2) + eps)^-0.5 * weight``, cast back."""
    import torch

    xf = x.float()
    out = xf * torch.pow(xf.pow(2).mean(-1, keepdim=True) + eps, -0.5)
    if weight is not None:
        out = out * weight.float()
    return out.type_as(x)


def gelu_tanh_mul(gate: Any, up: Any) -> Any:
    """``GELUTanh(gate) * up`` as Gemma 4's MLP computes it."""
    import torch

    return torch.nn.functional.gelu(gate, approximate="tanh") * up
