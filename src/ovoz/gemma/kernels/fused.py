"""Fused kernels for Gemma 4's small elementwise work, compiled by torch.compile (Inductor/Triton) on CUDA.

Where the time went (BENCHMARKS.md, profile of one batch-1 decode step): about 3,900 kernels, most of them
the float32 casts and reductions of transformers' ``Gemma4RMSNorm`` (eight norms a layer, eight or nine
kernels each) and the rotary embedding (five a call, two calls a layer). Each is tiny, so a decode step costs
kernel count x a few microseconds, not the weight reads; in prefill and training the same norms move the
float32 copies of every activation through memory several times.

:class:`FusedKernels` gives, while it is active, the modules of ONE model instance compiled versions of two pieces of
transformers' Gemma 4 code with the same arithmetic (a test checks each against the original):

* every ``Gemma4RMSNorm``'s forward: one kernel (float32 inside, as the original);
* every ``Gemma4TextMLP``'s ``gelu_tanh(gate) * up``: one kernel.

It sets an instance attribute ``forward`` on those modules and deletes it on exit: the classes, transformers'
module-level functions and every other model in the process are untouched, so engines on different models can run
in different threads. (The rotary embedding, a module-level function called inside the attention's forward, cannot be
replaced for one instance without copying transformers' attention code; it stays eager.)

Compilation happens once per shape family (seconds per function, not the minutes a whole-model compile
costs) and the compiled kernels can be captured in CUDA graphs. Everything else stays transformers' code.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from typing import Any

from .. import compat
from .reference import gelu_tanh_mul, rms_norm  # noqa: F401  (the kernels' torch arithmetic)

logger = logging.getLogger(__name__)

BACKEND = "triton"
"""Where the fused kernels come from: ``"triton"``, ovoz's hand-written Triton kernels (:mod:`.triton_ops`, built in
about a second each and kept in Triton's on-disk cache across processes), or a torch.compile backend (``"inductor"``:
the same functions compiled by torch.compile, 10-25 s per process on the H200; ``"eager"``: traced without code
generation, for tests on the CPU)."""

AUTO_MIN_AUDIO_S = 3 * 3600.0
"""With a torch.compile backend, ``fused_kernels=None`` (auto) compiles the kernels for a run holding at least this
much audio (the compilation pays back only over hours of audio); once compiled in a process they are used for every
run. The Triton kernels cost no such compilation: auto uses them wherever they run."""

NORM_CLASS = "Gemma4RMSNorm"
MLP_CLASS = "Gemma4TextMLP"

_warm: set[str] = set()  # backends whose kernels ran in this process
_lock = threading.Lock()
_depth: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()  # open contexts per model instance


def is_warm(backend: str | None = None) -> bool:
    """Whether the kernels have already been compiled and run in this process."""
    return (backend or BACKEND) in _warm


def choose(setting: bool | None, device: Any, audio_s: float) -> bool:
    """Use the fused kernels for a run? ``setting`` True/False decides; ``None`` (auto): the Triton kernels wherever
    they run; a torch.compile backend where it can compile, when already compiled (this process) or when the run
    holds at least :data:`AUTO_MIN_AUDIO_S` of audio."""
    if setting is not None:
        return setting
    if BACKEND == "triton":
        return available(device)
    return available(device) and (is_warm() or audio_s >= AUTO_MIN_AUDIO_S)


def available(device: Any) -> bool:
    """Whether fused kernels run on ``device`` (CUDA with Triton)."""
    if getattr(device, "type", str(device)) != "cuda":
        return False
    if BACKEND == "triton":
        from . import triton_ops

        return triton_ops.available(device)
    try:
        import torch
        import triton  # noqa: F401
    except ImportError:
        return False
    return hasattr(torch, "compile")


RECOMPILE_LIMIT = 256
"""One compiled graph per shape family and norm width: the per-function cap is raised so none falls back to eager."""


@functools.cache
def _compiled(backend: str) -> dict[str, Any]:
    if backend == "triton":
        from . import triton_attention, triton_ops

        return {"rms_norm": triton_ops.rms_norm, "gelu_tanh_mul": triton_ops.gelu_tanh_mul,
                "decode_attention": triton_attention.decode_attention}
    import torch

    if backend != "eager":
        logger.info("compiling ovoz's fused Gemma 4 kernels on first use (once per process; 10-25 s on an H200)")
    compile_ = functools.partial(torch.compile, backend=backend, dynamic=None, fullgraph=True)
    return {"rms_norm": compile_(rms_norm), "gelu_tanh_mul": compile_(gelu_tanh_mul)}


def _norm_forward(module: Any, kernel: Any) -> Any:
    eps = compat.norm_epsilon(module)
    scaled = compat.norm_has_scale(module)

    def forward(hidden_states: Any) -> Any:
        return kernel(hidden_states, module.weight if scaled else None, eps)

    return forward


def _mlp_forward(module: Any, kernel: Any) -> Any:
    def forward(x: Any) -> Any:
        return module.down_proj(kernel(module.gate_proj(x), module.up_proj(x)))

    return forward


class FusedKernels:
    """Context manager: the norms and MLP activations of ``model`` (one instance) run as compiled kernels.

    ``backend``: see :data:`BACKEND` (the tests use "eager" to check the wiring on CPU).
    Re-entrant per model; other models, and transformers' classes, are never touched.
    """

    def __init__(self, model: Any, backend: str | None = None) -> None:
        self.model = model
        self.backend = backend or BACKEND
        self.modules: list[Any] = []

    @property
    def decode_attention(self) -> Any:
        """The decode attention kernel of this backend (None: the packed SDPA path)."""
        return _compiled(self.backend).get("decode_attention")

    def __enter__(self) -> "FusedKernels":
        compat.raise_recompile_limit(RECOMPILE_LIMIT)  # torch.dynamo's config is per thread: set it in this one
        with _lock:
            depth = _depth.get(self.model, 0)
            _depth[self.model] = depth + 1
            if depth:
                return self
            kernels = _compiled(self.backend)
            for module in self.model.modules():
                name = type(module).__name__
                if name == NORM_CLASS:
                    module.forward = _norm_forward(module, kernels["rms_norm"])
                elif name == MLP_CLASS and compat.is_gelu_tanh(module.act_fn):
                    module.forward = _mlp_forward(module, kernels["gelu_tanh_mul"])
                else:
                    continue
                self.modules.append(module)
            _installed[self.model] = self.modules
        logger.debug("fused Gemma 4 kernels (%s) on %d modules", self.backend, len(self.modules))
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        with _lock:
            if exc_type is None:
                _warm.add(self.backend)
            depth = _depth[self.model] - 1
            _depth[self.model] = depth
            if depth:
                return
            for module in _installed.pop(self.model, []):
                vars(module).pop("forward", None)


_installed: "weakref.WeakKeyDictionary[Any, list[Any]]" = weakref.WeakKeyDictionary()
