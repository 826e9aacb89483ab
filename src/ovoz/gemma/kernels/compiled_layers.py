"""Regional compilation for training: each decoder layer's ``forward`` through ``torch.compile``.

A training step of E4B at batch 8 is launch-bound: one eager step issues tens of thousands of small kernels
(float32 RMSNorms and their recomputation, autocast casts around every LoRA layer, rotary embeddings), and the
GPU waits on Python for about a third of the step (BENCHMARKS.md, "Training"). Compiling whole layers fuses those
into a few kernels per layer and removes most of the launches.

Only the layer's own computation is compiled, the way torchtune compiles its layers:

* module hooks, and gradient checkpointing stay eager outside it. transformers 5.17 checkpoints in the layer's
  ``__call__``; newer releases wrap the class's ``forward`` in ``forward_with_checkpointing``. Here the wrapped
  function is compiled and, on those newer releases, the checkpointing call is made around it the same way. So
  ovoz's KV-shared forward pre-hooks (:mod:`ovoz.gemma.kernels.kv_shared`) keep working, no hook change triggers a
  recompilation, and dynamo never traces a checkpoint (where the layers' shared key/value dict breaks graphs);
* all 42 text layers share one compiled function, so dynamo compiles a handful of graphs (sliding/global
  attention, storing/reading shared keys, shapes), not 42. Sequence lengths vary between batches; after the first
  change dynamo makes them dynamic instead of recompiling for every length.

The LoRA layers inside are traced as they are (PEFT's ``Linear.forward``), so the result is the same adapter.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import compat

logger = logging.getLogger(__name__)

LAYER_CLASSES = ("Gemma4TextDecoderLayer", "Gemma4AudioLayer")
"""Modules whose ``forward`` is compiled: the language tower's decoder layers and the audio tower's conformer
layers (the layers transformers checkpoints)."""

RECOMPILE_LIMIT = 64
"""Dynamo's per-code-object cache (8 by default) must hold every layer variant and dynamic-shape graph."""


MIN_CAPABILITY = (7, 0)
"""Triton generates code for Volta (compute capability 7.0) and newer GPUs only."""


def available(device: str) -> bool:
    """Compiling for a CUDA device needs Triton (inductor's GPU code generator) and a GPU it supports."""
    import importlib.util

    if not device.startswith("cuda") or importlib.util.find_spec("triton") is None:
        return False
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= MIN_CAPABILITY


def compile_layers(model: Any, *, backend: str = "inductor", dynamic: bool | None = None,
                   fall_back: bool = False) -> int:
    """Run every decoder/conformer layer of ``model`` through one compiled function per layer class.

    Returns the number of layers. Idempotent: layers already compiled are left alone. :func:`uncompile_layers`
    undoes it. ``fall_back``: a graph that fails to compile runs eagerly, with dynamo's warning, instead of
    stopping the run (dynamo's ``suppress_errors``, set only around these layers' compiled calls;
    ``compile_layers: auto`` uses it).
    """
    import torch

    compat.raise_recompile_limit(RECOMPILE_LIMIT)
    per_class: dict[type, tuple[Any, Any]] = {}  # the eager forward and its compiled version
    count = 0
    for module in model.modules():
        cls = type(module)
        if cls.__name__ not in LAYER_CLASSES or _is_compiled(module):
            continue
        if cls not in per_class:
            eager = compat.unwrapped_forward(cls)
            per_class[cls] = eager, torch.compile(eager, backend=backend, dynamic=dynamic)
        module.forward = _layer_forward(module, *per_class[cls], checkpoints=compat.is_checkpointing_wrapper(cls.forward),
                                       fall_back=fall_back)
        count += 1
    logger.info("compiled %d layers (backend %s); the first steps include compilation", count, backend)
    return count


def _is_compiled(module: Any) -> bool:
    return getattr(vars(module).get("forward"), "_ovoz_compiled", False)


def _layer_forward(module: Any, eager: Any, compiled: Any, *, checkpoints: bool, fall_back: bool = False) -> Any:
    """The instance ``forward``: the compiled function while training, checkpointed here where transformers'
    wrapper would; the eager one otherwise (evaluation decodes with a KV cache, which the compiled training
    graphs were never meant for)."""
    from functools import partial

    import torch

    def forward(*args: Any, **kwargs: Any) -> Any:
        if not (module.training and torch.is_grad_enabled()):
            return eager(module, *args, **kwargs)
        with compat.dynamo_suppress_errors(fall_back):
            if checkpoints and module.gradient_checkpointing:
                return compat.checkpointing_function(module)(partial(compiled, module, **kwargs), *args)
            return compiled(module, *args, **kwargs)

    forward._ovoz_compiled = True  # type: ignore[attr-defined]
    return forward


def uncompile_layers(model: Any) -> int:
    """Give every compiled layer back its eager ``forward``; returns the count."""
    count = 0
    for module in model.modules():
        if _is_compiled(module):
            del module.forward
            count += 1
    return count
