"""Training memory: the per-layer embedding table kept off the GPU, and no vision tower."""

from __future__ import annotations

import numpy as np
import pytest


def tiny_model(vision: bool = False):
    from transformers import Gemma4VisionConfig

    from ovoz.gemma.testing import build_random_model, build_tokenizer, model_config

    config = model_config(build_tokenizer(), "tiny")
    if vision:
        config.vision_config = Gemma4VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            head_dim=16, position_embedding_size=64,
        )
    return build_random_model(config, seed=0)


def test_per_layer_table_leaves_the_parameters_and_gives_the_same_rows():
    import torch

    from ovoz.gemma.kernels.kv_shared import text_model_of
    from ovoz.gemma.memory import per_layer_embeddings_back, per_layer_embeddings_on_cpu

    model = tiny_model()
    text = text_model_of(model)
    ids = torch.randint(0, text.config.vocab_size, (2, 9))
    expected = text.get_per_layer_inputs(ids, None)
    n_params = sum(p.numel() for p in model.parameters())
    table_size = text.embed_tokens_per_layer.weight.numel()

    moved = per_layer_embeddings_on_cpu(model, "cpu")
    assert moved == table_size * 4  # float32
    assert per_layer_embeddings_on_cpu(model, "cpu") == 0  # once only
    # No longer a parameter: model.to(...) (the Trainer moves the model to the GPU) and state_dict leave it alone.
    assert sum(p.numel() for p in model.parameters()) == n_params - table_size
    assert not any("embed_tokens_per_layer.weight" in key for key in model.state_dict())
    model.to(torch.float64)
    assert text.embed_tokens_per_layer.weight.dtype == torch.float32
    model.to(torch.float32)
    torch.testing.assert_close(text.get_per_layer_inputs(ids, None), expected, rtol=0, atol=0)

    per_layer_embeddings_back(model, "cpu")
    assert sum(p.numel() for p in model.parameters()) == n_params
    torch.testing.assert_close(text.get_per_layer_inputs(ids, None), expected, rtol=0, atol=0)


def test_training_loss_is_unchanged_with_the_table_on_the_cpu(tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model

    from ovoz.gemma.adapter import target_regex
    from ovoz.gemma.memory import per_layer_embeddings_on_cpu
    from ovoz.gemma.processor import load_processor
    from ovoz.train.collator import AudioCollator
    from ovoz.train.loss import selective_loss

    processor = load_processor(tiny_model_dir)
    rng = np.random.default_rng(0)
    batch = AudioCollator(processor)([{"audio": rng.standard_normal(16_000).astype(np.float32) * 0.1,
                                       "text": "Salom"}])
    losses = []
    for on_cpu in (False, True):
        model = tiny_model()
        if on_cpu:
            per_layer_embeddings_on_cpu(model, "cpu")
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=target_regex(),
                                                 init_lora_weights=False))
        torch.manual_seed(0)
        loss, _ = selective_loss(model, batch)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1])


def test_vision_tower_is_dropped_and_audio_still_runs():
    import torch

    from ovoz.gemma.memory import drop_vision_tower

    model = tiny_model(vision=True)
    vision = sum(p.numel() for p in model.model.vision_tower.parameters())
    vision += sum(p.numel() for p in model.model.embed_vision.parameters())
    before = sum(p.numel() for p in model.parameters())
    assert drop_vision_tower(model) == vision > 0
    assert sum(p.numel() for p in model.parameters()) == before - vision
    assert drop_vision_tower(model) == 0
    ids = torch.tensor([[2, 10, 11, 12]])
    assert model(input_ids=ids).logits.shape[:2] == (1, 4)


@pytest.mark.parametrize(("setting", "on_cpu"), [("cpu", True), ("gpu", False), ("auto", False)])
def test_load_for_training_places_the_table(tiny_model_dir, tmp_path, setting, on_cpu):
    from ovoz.gemma.kernels.kv_shared import text_model_of
    from ovoz.gemma.memory import CPULookup
    from ovoz.gemma.training import load_for_training
    from ovoz.train import resolve_config

    config = resolve_config(overrides={"base": str(tiny_model_dir), "local_files_only": True,
                                       "per_layer_embeddings": setting, "compile_layers": "off"})
    loaded = load_for_training(config, "cpu")  # auto keeps it in place off the GPU
    table = text_model_of(loaded.model).embed_tokens_per_layer
    assert loaded.per_layer_embeddings_on_cpu is on_cpu
    assert isinstance(vars(table).get("forward"), CPULookup) is on_cpu
    assert loaded.compiled_layers == 0
