"""ovoz's training loss: logits only where a label is, instead of full-vocabulary logits everywhere.

A plain step computes ``batch x sequence x 262,144`` logits (and their float32 copy in the loss) although only
the transcript's ~40 positions carry a label: on E4B at batch 8 that is most of the step's memory. Here

1. the model is asked for its last ``k`` positions only (``logits_to_keep=k``, where ``k`` reaches back to the
   first labelled position; the collator left-pads, so transcripts end at the last position), and Gemma 4's
   KV-shared layers (the last 18 of 42 in E4B) run on those ``k`` positions only (:mod:`ovoz.gemma.kernels.kv_shared`; newer
   transformers do this themselves when the masks allow, 5.17 never does);
2. a pre-hook on ``lm_head`` keeps only the hidden states whose next token is labelled, so the head, the
   soft-capping and the cross-entropy see ``n_labelled x vocabulary`` values and nothing else.

The forward still goes through the (DDP-wrapped) top-level model, so gradient synchronisation is unchanged.
The result equals the standard causal-LM loss (a test checks it against ``model(labels=...)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..gemma.kernels.kv_shared import KVSharedLayersOnLastPositions, base_model_of, text_model_of

IGNORE_INDEX = -100


def output_head(model: Any) -> Any:
    """The ``lm_head`` of a (PEFT-, DDP- or compile-wrapped) Gemma 4 model."""
    return base_model_of(model).get_output_embeddings()


@contextlib.contextmanager
def head_on_positions(head: Any, mask: Any) -> Iterator[None]:
    """While active, ``head`` receives only the hidden states where ``mask`` (batch x kept positions) is True."""

    def select(module: Any, args: tuple) -> tuple:
        hidden = args[0]
        return (hidden[mask],) + tuple(args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def selective_loss(
    model: Any, inputs: dict[str, Any], *, num_items_in_batch: Any = None
) -> tuple[Any, int]:
    """Sum of token cross-entropies over labelled positions divided by ``num_items_in_batch`` (or their count).

    ``inputs`` holds the collator's batch including ``labels``. Returns ``(loss, n_labelled)``.
    """
    import torch
    import torch.nn.functional as F

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    targets = labels[:, 1:]  # position t predicts token t + 1
    labelled = targets != IGNORE_INDEX
    n_labelled = int(labelled.sum())
    columns = labelled.any(dim=0).nonzero()
    if n_labelled == 0:
        # Keep the graph connected (DDP expects every rank to produce gradients).
        zero = sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return zero, 0
    first = int(columns[0])
    keep = targets.shape[1] - first + 1  # hidden positions first .. L-1 (the last one predicts nothing)
    position_mask = torch.zeros((labels.shape[0], keep), dtype=torch.bool, device=labels.device)
    position_mask[:, :-1] = labelled[:, first:]
    cut = KVSharedLayersOnLastPositions(text_model_of(model), keep=keep)
    with head_on_positions(output_head(model), position_mask), cut:
        outputs = model(**inputs, logits_to_keep=keep, use_cache=False)
    logits = outputs.logits  # (n_labelled, vocab), already soft-capped by the model
    chosen = targets[:, first:][labelled[:, first:]]
    loss = F.cross_entropy(logits.float(), chosen, reduction="sum")
    if num_items_in_batch is None:
        return loss / n_labelled, n_labelled
    return loss / num_items_in_batch, n_labelled
