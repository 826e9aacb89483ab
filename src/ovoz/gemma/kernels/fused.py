"""Fused kernels for Gemma 4's small elementwise work, compiled by torch.compile (Inductor/Triton) on CUDA.

Where the time went (BENCHMARKS.md, profile of one batch-1 decode step): about 3,900 kernels, most of them
the float32 casts and reductions of transformers' ``Gemma4RMSNorm`` (eight norms a layer, eight or nine
kernels each) and the rotary embedding (five a call, two calls a layer). Each is tiny, so a decode step costs
kernel count x a few microseconds, not the weight reads; in prefill and training the same norms move the
float32 copies of every activation through memory several times.

:class:`FusedKernels` swaps, while it is active, three pieces of transformers' Gemma 4 code for compiled
versions with the same arithmetic (a test checks each against the original):

* ``Gemma4RMSNorm.forward``: one kernel (float32 inside, as the original);
* ``apply_rotary_pos_emb``: one kernel per call;
* the MLP's ``gelu_tanh(gate) * up``: one kernel.

Compilation happens once per shape family (seconds per function, not the minutes a whole-model compile
costs) and the compiled kernels can be captured in CUDA graphs. Everything else stays transformers' code.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)

BACKEND = "inductor"
"""torch.compile backend of the fused kernels."""

AUTO_MIN_AUDIO_S = 3 * 3600.0
"""``fused_kernels=None`` (auto) compiles the kernels for a run holding at least this much audio. Compiling costs
10-25 s once per process on the H200 and saves about a third of the engine's time (BENCHMARKS.md), which pays
back only over hours of audio; once compiled in a process the kernels are used for every run."""

_warm: set[str] = set()  # backends whose kernels ran in this process
_lock = threading.RLock()
_active = 0  # FusedKernels contexts open (the patches stay while any is)
_saved: dict[str, Any] = {}  # transformers' originals while patched


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


def is_warm(backend: str | None = None) -> bool:
    """Whether the kernels have already been compiled and run in this process."""
    return (backend or BACKEND) in _warm


def choose(setting: bool | None, device: Any, audio_s: float) -> bool:
    """Use the fused kernels for a run? ``setting`` True/False decides; ``None`` (auto): where they can be compiled,
    when they already are (this process) or when the run holds at least :data:`AUTO_MIN_AUDIO_S` of audio."""
    if setting is not None:
        return setting
    return available(device) and (is_warm() or audio_s >= AUTO_MIN_AUDIO_S)


def available(device: Any) -> bool:
    """Whether fused kernels can be compiled for ``device`` (CUDA with Triton)."""
    if getattr(device, "type", str(device)) != "cuda":
        return False
    try:
        import torch
        import triton  # noqa: F401
    except ImportError:
        return False
    return hasattr(torch, "compile")


@functools.cache
def _compiled(backend: str) -> dict[str, Any]:
    import torch
    from transformers.models.gemma4 import modeling_gemma4

    if backend != "eager":
        logger.info("compiling ovoz's fused Gemma 4 kernels on first use (once per process; 10-25 s on an H200)")
    config = torch._dynamo.config
    # One compiled graph per shape family and norm width; raise the per-function cap so none falls back to eager.
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), 64))
    compile_ = functools.partial(torch.compile, backend=backend, dynamic=None, fullgraph=True)
    rope = getattr(modeling_gemma4, "apply_rotary_pos_emb", None)
    return {
        "rms_norm": compile_(rms_norm),
        "gelu_tanh_mul": compile_(gelu_tanh_mul),
        "rope": compile_(rope) if rope is not None else None,
    }


class FusedKernels:
    """Context manager: transformers' Gemma 4 norms, rotary embedding and MLP activation run as compiled kernels.

    ``backend`` is torch.compile's ("inductor" on CUDA; the tests use "eager" to check the wiring on CPU).
    Re-entrant and process-wide while active (the patched pieces are module-level in transformers).
    """

    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend or BACKEND

    def __enter__(self) -> "FusedKernels":
        global _active
        with _lock:
            if _active == 0:
                _patch(_compiled(self.backend))
                logger.debug("fused Gemma 4 kernels active (torch.compile backend %s)", self.backend)
            _active += 1
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        global _active
        with _lock:
            if exc_type is None:
                _warm.add(self.backend)
            _active -= 1
            if _active == 0:
                _restore()


def _is_gelu_tanh(act_fn: Any) -> bool:
    """transformers' ``GELUTanh`` computing ``F.gelu(approximate="tanh")`` (not its pure-python variant)."""
    act = getattr(act_fn, "act", None)
    return (
        type(act_fn).__name__ == "GELUTanh"
        and isinstance(act, functools.partial)
        and act.keywords.get("approximate") == "tanh"
    )


def _patch(kernels: dict[str, Any]) -> None:
    """Swap transformers' Gemma 4 RMSNorm forward, MLP forward and rotary function for the compiled kernels."""
    from transformers.models.gemma4 import modeling_gemma4 as m

    norm, act_mul = kernels["rms_norm"], kernels["gelu_tanh_mul"]
    _saved.clear()
    _saved["norm"] = m.Gemma4RMSNorm.forward
    _saved["mlp"] = m.Gemma4TextMLP.forward

    def norm_forward(self: Any, hidden_states: Any) -> Any:
        return norm(hidden_states, self.weight if self.with_scale else None, self.eps)

    original_mlp = _saved["mlp"]

    def mlp_forward(self: Any, x: Any) -> Any:
        if not _is_gelu_tanh(self.act_fn):
            return original_mlp(self, x)
        return self.down_proj(act_mul(self.gate_proj(x), self.up_proj(x)))

    m.Gemma4RMSNorm.forward = norm_forward
    m.Gemma4TextMLP.forward = mlp_forward
    if kernels["rope"] is not None:
        _saved["rope"] = m.apply_rotary_pos_emb
        m.apply_rotary_pos_emb = kernels["rope"]


def _restore() -> None:
    from transformers.models.gemma4 import modeling_gemma4 as m

    m.Gemma4RMSNorm.forward = _saved.pop("norm")
    m.Gemma4TextMLP.forward = _saved.pop("mlp")
    if "rope" in _saved:
        m.apply_rotary_pos_emb = _saved.pop("rope")
