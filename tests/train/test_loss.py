"""ovoz's loss (logits at labelled positions only) equals the model's own causal-LM loss."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma4ForConditionalGeneration

    from ovoz.adapter import target_regex
    from ovoz.processor import load_processor

    torch.manual_seed(0)
    processor = load_processor(tiny_model_dir)
    model = Gemma4ForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=target_regex(),
                                             init_lora_weights=False))
    model.train()
    rng = np.random.default_rng(1)
    examples = [{"audio": rng.standard_normal(n).astype(np.float32) * 0.1, "text": text}
                for n, text in zip((16_000, 30_000, 24_000), ("Salom", "Bugun havo juda yaxshi", "Men"))]
    return model, processor, examples


@pytest.mark.parametrize("loss_on_prompt", [False, True])
def test_selective_loss_and_gradients_match_the_full_loss(setup, loss_on_prompt):
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
    mine, n_labelled = selective_loss(model, batch)
    mine.backward()
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
