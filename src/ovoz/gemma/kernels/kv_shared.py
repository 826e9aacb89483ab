"""Run Gemma 4's KV-shared layers on the last positions only, where nothing else needs the others.

Gemma 4's last ``num_kv_shared_layers`` decoder layers (18 of E4B's 42) read the keys and values stored by earlier
layers and store none of their own. Their outputs at a position feed only that position's logits. So when only
the last ``keep`` positions' logits are wanted (the first generated token after a left-padded prompt: ``keep=1``;
the labelled transcript at the end of a training row: ``keep`` reaching back to the first label), the other
positions can skip those layers entirely: about 40% of the language model's work on a long audio prompt.

transformers >= 5.2x does this inside ``Gemma4TextModel`` when given an integer ``logits_to_keep``; 5.17 (the GPU
box's version, and what Unsloth pins) does not. :class:`KVSharedLayersOnLastPositions` does it on every version
with a forward pre-hook on each KV-shared layer that narrows its sequence inputs (hidden states, per-layer input,
rotary cos/sin, mask rows, positions) to the last ``keep`` positions; where transformers already did, it changes
nothing. The hooks are differentiable and survive gradient checkpointing (the recomputation calls them again).
"""

from __future__ import annotations

from typing import Any

from .. import compat


def kv_shared_layers(text_model: Any) -> list[Any]:
    """The decoder layers of a Gemma 4 text model that reuse earlier layers' keys/values."""
    return [layer for layer in text_model.layers if getattr(layer.self_attn, "is_kv_shared_layer", False)]


def base_model_of(model: Any) -> Any:
    """The transformers model (``Gemma4ForConditionalGeneration``) inside DDP, ``torch.compile`` and PEFT wrappers."""
    while hasattr(model, "module"):  # DDP / DataParallel
        model = model.module
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if hasattr(model, "get_base_model"):  # PEFT
        model = model.get_base_model()
    return model


def text_model_of(model: Any) -> Any:
    """The ``Gemma4TextModel`` inside a (DDP-, compile- or PEFT-wrapped) Gemma 4 model."""
    model = base_model_of(model)
    core = getattr(model, "model", model)  # Gemma4ForConditionalGeneration -> Gemma4Model
    return getattr(core, "language_model", core)


class KVSharedLayersOnLastPositions:
    """Context manager: while active, the KV-shared layers of ``text_model`` see the last ``keep`` positions only.

    ``keep`` may be changed between uses. The caller must want the outputs of those positions only. Where
    transformers passed no mask (no padding: SDPA would use its own causal flag, which aligns a shorter query block
    to the first keys), an explicit causal (and sliding-window) mask for the kept rows is passed instead. With
    attention implementations other than SDPA and eager the hooks do nothing.
    """

    SUPPORTED = ("sdpa", "eager")

    def __init__(self, text_model: Any, keep: int = 1) -> None:
        implementation = getattr(text_model.config, "_attn_implementation", None)
        self.layers = kv_shared_layers(text_model) if implementation in self.SUPPORTED else []
        self.bool_masks = implementation == "sdpa"
        self.keep = keep
        self.handles: list[Any] = []
        self.checkpointing: dict[Any, Any] = {}

    def _mask(self, module: Any, length: int, like: Any) -> Any:
        """[1, 1, keep, length]: the last ``keep`` queries against all keys, causal, inside the sliding window."""
        import torch

        keys = torch.arange(length, device=like.device)
        queries = keys[length - self.keep :, None]
        allowed = keys[None, :] <= queries
        window = getattr(module.self_attn, "sliding_window", None)
        if window:
            allowed &= keys[None, :] > queries - window
        allowed = allowed[None, None]
        if self.bool_masks:
            return allowed
        return torch.where(allowed, 0.0, torch.finfo(like.dtype).min).to(like.dtype)

    def _cut(self, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        keep = self.keep
        sequences = [a for a in args[:2] if hasattr(a, "shape")]
        sequences += [kwargs[n] for n in ("hidden_states", "per_layer_input") if kwargs.get(n) is not None]
        sequences += list(kwargs.get("position_embeddings") or ())
        length = max(t.shape[1] for t in sequences)  # the full prompt length (the keys' length)
        if length <= keep:
            return args, kwargs

        def last(value: Any, dim: int) -> Any:
            if value is None or not hasattr(value, "shape") or value.dim() <= dim or value.shape[dim] <= keep:
                return value
            return value.narrow(dim, value.shape[dim] - keep, keep)

        args = tuple(last(a, 1) for a in args)  # hidden_states, per_layer_input
        kwargs = dict(kwargs)
        for name in ("hidden_states", "per_layer_input", "position_ids"):
            if name in kwargs:
                kwargs[name] = last(kwargs[name], 1)
        if kwargs.get("position_embeddings") is not None:
            kwargs["position_embeddings"] = tuple(last(t, 1) for t in kwargs["position_embeddings"])
        if kwargs.get("attention_mask") is not None:
            kwargs["attention_mask"] = last(kwargs["attention_mask"], 2)  # [batch, 1, query, key]: query rows
        else:
            kwargs["attention_mask"] = self._mask(module, length, sequences[0])
        return args, kwargs

    def _checkpointed(self, layer: Any, checkpoint: Any) -> Any:
        """``layer``'s checkpointing function, made to cut again when the backward pass recomputes the layer.

        transformers 5.17 checkpoints a layer in its ``__call__``, around the module hooks: the backward pass
        recomputes the layer from its uncut inputs by calling it again, after this context has closed and its
        hooks are gone. The recomputation therefore puts a hook back for its own duration. (Newer releases
        checkpoint inside ``forward``, after the hooks, and recompute from the inputs already cut.)
        """

        def checkpointed(function: Any, *args: Any, **kwargs: Any) -> Any:
            def run(*inner_args: Any, **inner_kwargs: Any) -> Any:
                if self.handles:  # the forward pass: this context's hooks are on
                    return function(*inner_args, **inner_kwargs)
                handle = layer.register_forward_pre_hook(self._cut, with_kwargs=True)
                try:
                    return function(*inner_args, **inner_kwargs)
                finally:
                    handle.remove()

            return checkpoint(run, *args, **kwargs)

        return checkpointed

    def __enter__(self) -> "KVSharedLayersOnLastPositions":
        self.handles = [layer.register_forward_pre_hook(self._cut, with_kwargs=True) for layer in self.layers]
        self.checkpointing = {}
        for layer in self.layers:
            checkpoint = compat.checkpointing_function(layer)
            if checkpoint is not None:
                self.checkpointing[layer] = checkpoint
                compat.set_checkpointing_function(layer, self._checkpointed(layer, checkpoint))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        for layer, checkpoint in self.checkpointing.items():
            compat.set_checkpointing_function(layer, checkpoint)
        self.checkpointing = {}
