"""Gemma 4's KV-shared layers on the last positions only: same outputs there, less work elsewhere."""

from __future__ import annotations

import pytest
import torch

from ovoz.gemma.kernels.kv_shared import KVSharedLayersOnLastPositions, kv_shared_layers, text_model_of


@pytest.fixture
def text(tiny_model):
    model = text_model_of(tiny_model.model)
    before = model.config._attn_implementation
    yield model
    model.config._attn_implementation = before


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("keep", [1, 5])
def test_last_positions_are_unchanged_and_the_rest_skipped(text, implementation, padded, keep):
    text.config._attn_implementation = implementation
    torch.manual_seed(0)
    ids = torch.randint(10, 200, (2, 23))
    mask = torch.ones_like(ids)
    if padded:
        mask[0, :6] = 0  # left padding
        ids[0, :6] = 0
    with torch.inference_mode():
        full = text(input_ids=ids, attention_mask=mask).last_hidden_state
        seen: list[int] = []
        handles = [layer.mlp.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[1]))
                   for layer in kv_shared_layers(text)]
        try:
            with KVSharedLayersOnLastPositions(text, keep=keep):
                cut = text(input_ids=ids, attention_mask=mask).last_hidden_state
        finally:
            for handle in handles:
                handle.remove()
    assert seen and set(seen) == {keep}
    assert cut.shape[1] == keep
    torch.testing.assert_close(cut, full[:, -keep:], rtol=1e-5, atol=1e-5)


def test_other_attention_implementations_are_left_alone(text):
    text.config._attn_implementation = "flex_attention"
    assert KVSharedLayersOnLastPositions(text, keep=3).layers == []


def test_text_model_of_unwraps(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma4ForConditionalGeneration

    model = Gemma4ForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    inner = model.model.language_model
    assert text_model_of(model) is inner
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=r".*language_model.*q_proj"))
    assert text_model_of(wrapped) is inner
