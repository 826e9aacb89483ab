"""Training memory: keep off the GPU what a speech run never computes with there.

* **Per-layer embeddings on the CPU.** E4B's ``embed_tokens_per_layer`` is a 262,144 x 10,752 table (2.8 B
  parameters, 5.25 GiB in bf16): more than half of a 4-bit model's GPU memory, although training only looks up
  a few thousand rows a step and never updates it. On the CPU the lookup reads those rows there and copies the
  result (batch x sequence x 10,752 values, about 55 MB for 8 rows of 320 tokens) to the GPU.
* **No vision tower.** Gemma 4's vision encoder takes no part in speech; the released checkpoints carry one.
"""

from __future__ import annotations

import logging
from typing import Any

from .kernels.kv_shared import base_model_of, text_model_of

logger = logging.getLogger(__name__)


def per_layer_embeddings_on_cpu(model: Any, device: Any) -> int:
    """Keep the per-layer embedding table on the CPU; lookups run there and their rows are copied to ``device``.

    Call it before or after the rest of the model moves to ``device``. The table must stay frozen (LoRA never
    trains it). Returns the table's size in bytes (0 if the model has no such table or this was done already).
    """
    import torch

    text_model = text_model_of(model)
    table = getattr(text_model, "embed_tokens_per_layer", None)
    if table is None or isinstance(vars(table).get("forward"), CPULookup):
        return 0
    weight = table.weight
    was_cuda = weight.device.type == "cuda"
    n_bytes = weight.numel() * weight.element_size()
    # Unregister the weight and keep it as a plain attribute: ``model.to(device)`` (which the Trainer calls) moves
    # parameters and buffers only, so the table stays on the CPU while ``table.weight`` still reads it.
    del table._parameters["weight"]
    vars(table)["weight"] = weight.detach().to("cpu").requires_grad_(False)
    del weight
    table.forward = CPULookup(table, torch.device(device))
    if was_cuda:
        torch.cuda.empty_cache()
    logger.info("per-layer embeddings (%.2f GiB) kept on the CPU; lookups copy their rows to %s",
                n_bytes / 2**30, device)
    return n_bytes


def per_layer_embeddings_back(model: Any, device: Any) -> None:
    """Undo :func:`per_layer_embeddings_on_cpu`: the table becomes a (frozen) parameter on ``device`` again."""
    import torch

    table = text_model_of(model).embed_tokens_per_layer
    if not isinstance(vars(table).get("forward"), CPULookup):
        return
    del table.forward
    weight = vars(table).pop("weight")
    table.weight = torch.nn.Parameter(weight.to(device), requires_grad=False)


class CPULookup:
    """The table's ``forward``: gather rows on the CPU into a reused pinned buffer, copy them asynchronously to the
    device and apply the embedding scale there (a scaled copy on the CPU would cost as much as the gather)."""

    ROUND = 4096  # rows: the pinned buffer grows in steps, not for every longer batch

    def __init__(self, table: Any, device: Any) -> None:
        scale = getattr(table, "embed_scale", None)
        self.table = table
        self.device = device
        self.scale = float(scale) if scale is not None else 1.0
        self.buffer: Any = None
        self.copied: Any = None  # CUDA event: the last copy out of the buffer has finished

    def __call__(self, input_ids: Any) -> Any:
        import torch

        weight = self.table.weight
        ids = input_ids.reshape(-1).to("cpu")
        with torch.no_grad():
            if self.device.type == "cuda":
                rows = self._pinned(ids.numel(), weight)
                torch.index_select(weight, 0, ids, out=rows)
                out = rows.to(self.device, non_blocking=True)
                self.copied = torch.cuda.Event()
                self.copied.record()
            else:
                out = weight.index_select(0, ids).to(self.device)
            if self.scale != 1.0:
                out = out * torch.tensor(self.scale, dtype=weight.dtype, device=out.device)
        return out.reshape(*input_ids.shape, weight.shape[1])

    def _pinned(self, n: int, weight: Any) -> Any:
        import torch

        if self.copied is not None:
            self.copied.synchronize()  # the previous batch's rows have left the buffer
        if self.buffer is None or self.buffer.shape[0] < n or self.buffer.dtype != weight.dtype:
            size = -(-n // self.ROUND) * self.ROUND
            self.buffer = torch.empty((size, weight.shape[1]), dtype=weight.dtype, pin_memory=True)
        return self.buffer[:n]


def drop_vision_tower(model: Any) -> int:
    """Remove Gemma 4's vision encoder and its projection; returns the parameters removed."""
    model = base_model_of(model)
    core = getattr(model, "model", model)
    removed = 0
    for name in ("vision_tower", "embed_vision"):
        module = getattr(core, name, None)
        if module is not None:
            removed += sum(p.numel() for p in module.parameters())
            setattr(core, name, None)
    if removed:
        logger.info("vision tower removed (%.0f M parameters): speech never uses it", removed / 1e6)
    return removed
