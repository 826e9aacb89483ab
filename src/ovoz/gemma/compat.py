"""Every probe of transformers (and torch) internals that ovoz relies on, in one place, each tested.

ovoz supports a range of transformers releases (``pyproject.toml``); where they differ in something ovoz touches,
the difference is handled here and nowhere else. Each function names the releases it was written against, and
``tests/gemma/test_compat.py`` checks each probe against the installed release.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from typing import Any, Callable, Iterator

CHECKPOINTING_WRAPPER_NAME = "forward_with_checkpointing"
"""transformers >= 5.2x wraps a checkpointing layer's ``forward`` in a function of this name (5.17 does not)."""
CHECKPOINTING_FUNC_ATTRIBUTE = "_gradient_checkpointing_func"
"""Where ``GradientCheckpointingLayer`` keeps the checkpoint function once checkpointing is enabled (5.17-5.25)."""


def transformers_version() -> str:
    import transformers

    return transformers.__version__


def cache_keyword(forward: Callable) -> str:
    """The keyword a Gemma 4 text model's ``forward`` takes its KV cache by: ``cache`` (5.2x) or
    ``past_key_values`` (5.17)."""
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def norm_epsilon(norm: Any) -> float:
    """``Gemma4RMSNorm``'s epsilon: ``variance_epsilon`` (5.25) or ``eps`` (5.17-5.24)."""
    for name in ("variance_epsilon", "eps"):
        value = getattr(norm, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    raise AttributeError(f"{type(norm).__name__} has neither variance_epsilon nor eps: an unsupported transformers")


def norm_has_scale(norm: Any) -> bool:
    """Whether a ``Gemma4RMSNorm`` multiplies by a learned weight (``with_scale``)."""
    return bool(getattr(norm, "with_scale", getattr(norm, "weight", None) is not None))


def is_gelu_tanh(act_fn: Any) -> bool:
    """transformers' ``GELUTanh`` activation computing ``F.gelu(approximate="tanh")`` (not its pure-python variant)."""
    import functools

    act = getattr(act_fn, "act", None)
    return (type(act_fn).__name__ == "GELUTanh" and isinstance(act, functools.partial)
            and act.keywords.get("approximate") == "tanh")


_registered: set[str] = set()
_register_lock = threading.Lock()


def register_attention(name: str, function: Callable) -> str:
    """Add an attention function under a new name through transformers' public ``AttentionInterface``.

    Registering adds a name; it never replaces transformers' own implementations. A model uses the function only
    while :func:`attention_implementation` sets its config to that name."""
    from transformers import AttentionInterface

    with _register_lock:
        if name not in _registered:
            AttentionInterface.register(name, function)
            _registered.add(name)
    return name


def get_attention(config: Any) -> str | None:
    """The attention implementation a (sub-)config selects."""
    return getattr(config, "_attn_implementation", None)


@contextlib.contextmanager
def attention_implementation(config: Any, name: str) -> Iterator[None]:
    """Select attention ``name`` on this one config (so on the one model that owns it) for a block.

    ``_attn_implementation`` is read by each attention layer on every call (5.17-5.25); setting it on a config object
    affects only the modules holding that object."""
    previous = get_attention(config)
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


def is_checkpointing_wrapper(function: Any) -> bool:
    """Whether ``function`` is transformers' checkpointing wrapper around a layer's ``forward`` (5.2x)."""
    code = getattr(function, "__code__", None)  # functools.wraps copied the wrapped function's __name__
    return code is not None and code.co_name == CHECKPOINTING_WRAPPER_NAME and hasattr(function, "__wrapped__")


def unwrapped_forward(cls: type) -> Any:
    """A layer class's own ``forward``, without transformers' checkpointing wrapper (5.2x adds one)."""
    forward = cls.forward
    while is_checkpointing_wrapper(forward):  # a subclass of a wrapped layer is wrapped again
        forward = forward.__wrapped__
    return forward


def checkpointing_function(layer: Any) -> Any:
    """The checkpoint function a layer instance was given by ``gradient_checkpointing_enable`` (None if off)."""
    return vars(layer).get(CHECKPOINTING_FUNC_ATTRIBUTE)


def set_checkpointing_function(layer: Any, function: Any) -> None:
    setattr(layer, CHECKPOINTING_FUNC_ATTRIBUTE, function)


DYNAMO_RECOMPILE_LIMITS = ("recompile_limit", "cache_size_limit")
"""torch.dynamo's per-function recompile cap, under its newer and older names (torch 2.6-2.13 have one or both)."""


def raise_recompile_limit(limit: int) -> None:
    """Raise (never lower) torch.dynamo's per-function recompile cap, so a function compiled for several shapes never
    silently falls back to eager. A larger cache is the only effect; nothing else of torch's is changed. torch 2.13 keeps
    dynamo's config per thread: call it in the thread that runs the compiled code."""
    import torch

    config = torch._dynamo.config
    for name in DYNAMO_RECOMPILE_LIMITS:
        if hasattr(config, name) and getattr(config, name) < limit:
            setattr(config, name, limit)


@contextlib.contextmanager
def dynamo_suppress_errors(enabled: bool) -> Iterator[None]:
    """torch.dynamo's ``suppress_errors`` (a graph that fails to compile runs eagerly) for a block, then restored."""
    import torch

    if not enabled:
        yield
        return
    with torch._dynamo.config.patch(suppress_errors=True):
        yield


def audio_processor_tokens() -> tuple[str, ...]:
    """Tokenizer attributes a Gemma 4 audio tokenizer carries (5.17-5.25)."""
    return ("audio_token", "boa_token", "eoa_token")
