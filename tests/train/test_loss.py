"""ovoz's loss (logits at labelled positions only) equals the model's own causal-LM loss."""

from __future__ import annotations

import numpy as np
import pytest
from train_helpers import lora_model_and_processor


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    model, processor = lora_model_and_processor(tiny_model_dir)
    rng = np.random.default_rng(1)
    examples = [{"audio": rng.standard_normal(n).astype(np.float32) * 0.1, "text": text}
                for n, text in zip((16_000, 30_000, 24_000), ("Salom", "Bugun havo juda yaxshi", "Men"))]
    return model, processor, examples


@pytest.mark.parametrize(("loss_on_prompt", "checkpointing"), [(False, False), (True, False), (False, True)])
def test_selective_loss_and_gradients_match_the_full_loss(setup, loss_on_prompt, checkpointing):
    """With gradient checkpointing too: the backward pass recomputes the KV-shared layers after the cut's context
    has closed (transformers 5.17 checkpoints around the module hooks), and must cut again."""
    import torch

    from ovoz.train.collator import AudioCollator
    from ovoz.train.loss import selective_loss

    model, processor, examples = setup
    batch = AudioCollator(processor, loss_on_prompt=loss_on_prompt)(examples)
    model.zero_grad()
    full = model(**batch, use_cache=False).loss
    full.backward()
    full_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    try:
        mine, n_labelled = selective_loss(model, batch)
        mine.backward()
    finally:
        model.gradient_checkpointing_disable()
    assert n_labelled == int((batch["labels"][:, 1:] != -100).sum())
    torch.testing.assert_close(mine, full, rtol=1e-5, atol=1e-5)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            torch.testing.assert_close(parameter.grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_num_items_in_batch_divides_the_summed_loss(setup):
    from ovoz.train.collator import AudioCollator
    from ovoz.train.loss import selective_loss

    model, processor, examples = setup
    batch = AudioCollator(processor)(examples)
    mean, n = selective_loss(model, batch)
    scaled, _ = selective_loss(model, batch, num_items_in_batch=2 * n)
    assert abs(float(scaled.detach()) - float(mean.detach()) / 2) < 1e-5


def test_unpadded_batch_runs_the_kv_shared_layers_on_the_labelled_end_only(setup):
    """No padding: transformers passes no mask and keeps every position in the KV-shared layers; ovoz cuts them to
    the positions that carry labels (with an explicit causal mask) and the loss and gradients stay the same."""
    import torch

    from ovoz.gemma.kernels.kv_shared import kv_shared_layers, text_model_of
    from ovoz.train.collator import AudioCollator
    from ovoz.train.loss import selective_loss

    model, processor, _ = setup
    rng = np.random.default_rng(2)
    examples = [{"audio": rng.standard_normal(20_000).astype(np.float32) * 0.1, "text": "Salom dunyo"}
                for _ in range(2)]
    batch = AudioCollator(processor)(examples)
    assert bool(batch["attention_mask"].all())
    model.zero_grad()
    full = model(**batch, use_cache=False).loss
    full.backward()
    full_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    seen: list[int] = []
    handles = [layer.mlp.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[1]))
               for layer in kv_shared_layers(text_model_of(model))]
    try:
        mine, n_labelled = selective_loss(model, batch)
    finally:
        for handle in handles:
            handle.remove()
    mine.backward()
    length = batch["input_ids"].shape[1]
    assert seen and max(seen) < length // 4  # the transcript's end, not the audio prompt
    torch.testing.assert_close(mine, full, rtol=1e-5, atol=1e-5)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            torch.testing.assert_close(parameter.grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)
