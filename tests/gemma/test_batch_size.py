"""auto_batch_size: the KV term is what the engine allocates; the answer is a power of two that fits."""

from __future__ import annotations

import pytest

from ovoz.gemma.batch_size import MAX_SLOTS, auto_batch_size, engine_memory, kv_cache_bytes_per_slot
from ovoz.gemma.static_engine import StaticEngine

GIB = 1 << 30


def e4b_text_config():
    """Gemma 4 E4B's text tower (its published architecture)."""
    from transformers import Gemma4TextConfig

    return Gemma4TextConfig(
        vocab_size=262_144, vocab_size_per_layer_input=262_144, hidden_size=2560, intermediate_size=10240,
        num_hidden_layers=42, num_attention_heads=8, num_key_value_heads=2, head_dim=256, global_head_dim=512,
        hidden_size_per_layer_input=256, num_kv_shared_layers=18, sliding_window=512, final_logit_softcapping=30.0,
        hidden_activation="gelu_pytorch_tanh",
    )


def tiny_text_config():
    from transformers import Gemma4TextConfig

    return Gemma4TextConfig(
        vocab_size=320, vocab_size_per_layer_input=320, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, global_head_dim=64, hidden_size_per_layer_input=16,
        num_kv_shared_layers=2, sliding_window=16,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    )


def test_e4b_kv_cache_counts_the_24_cache_owning_layers():
    """42 layers less 18 KV-shared: 24 own a cache; every 6th is global (512 wide), the others 256; 2 KV heads."""
    config = e4b_text_config()
    owners = config.layer_types[: 42 - 18]
    full = owners.count("full_attention")
    assert full == 4
    per_position = 2 * 2 * (full * 512 + (len(owners) - full) * 256)  # keys + values, kv heads, widths
    assert kv_cache_bytes_per_slot(config, 1000, 2) == 2 * 1000 * per_position
    assert kv_cache_bytes_per_slot(config, 1000, 4) == 2 * kv_cache_bytes_per_slot(config, 1000, 2)


def test_kv_term_is_what_the_engine_allocates(tiny_model):
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=3, max_new_tokens=20, max_audio_tokens=40)
    allocated = sum(t.numel() * t.element_size() for t in (*engine.cache.keys.values(), *engine.cache.values.values()))
    text = tiny_model.model.config.get_text_config()
    positions = 40 + engine.prompt_room + 20 + 2  # what auto_batch_size counts for these sizes
    assert positions == engine.capacity + 1
    assert allocated == 3 * kv_cache_bytes_per_slot(text, positions, 4)


@pytest.mark.parametrize("config", [e4b_text_config, tiny_text_config])
def test_answer_is_the_largest_power_of_two_that_fits(config):
    text = config()
    memory = engine_memory(text, 750, 80, 256)
    for free in (0, GIB // 2, 3 * GIB, 20 * GIB, 80 * GIB, 123 * GIB, 4096 * GIB):
        slots = auto_batch_size(free, text, 750, 80, 256)
        assert 1 <= slots <= MAX_SLOTS and slots & (slots - 1) == 0
        budget = free * 0.9
        if slots > 1:
            assert memory.total(slots, slots) <= budget
        if slots < MAX_SLOTS:
            assert memory.total(2 * slots, 2 * slots) > budget
    assert auto_batch_size(4096 * GIB, text, 750, 80, 256) == MAX_SLOTS
    assert auto_batch_size(0, text, 750, 80, 256) == 1


def test_e4b_sizes_follow_memory_audio_length_and_prefill_group():
    text = e4b_text_config()
    answers = [auto_batch_size(free * GIB, text, 750, 80, 256) for free in (4, 8, 16, 32, 64, 128)]
    assert answers == sorted(answers) and answers[0] < answers[-1]
    free = 40 * GIB
    assert auto_batch_size(free, text, 250, 80, 256) >= auto_batch_size(free, text, 750, 80, 256)
    assert auto_batch_size(free, text, 750, 80, 256, prefill_clips=16) >= auto_batch_size(free, text, 750, 80, 256)
    assert auto_batch_size(free, text, 750, 80, 256, dtype_bytes=4) <= auto_batch_size(free, text, 750, 80, 256)
    assert auto_batch_size(free, text, 750, 80, 256, max_slots=100) <= 64


def test_kv_dominates_per_slot_and_the_prefill_is_counted_per_clip():
    """E4B, 30 s clips: each slot's cache is tens of MiB; one prefill clip (audio tower included) costs more
    than a slot's cache, so capping the prefill group admits more slots."""
    memory = engine_memory(e4b_text_config(), 750, 80, 256)
    assert memory.kv_per_slot > memory.decode_per_slot > 0
    assert memory.per_prefill_clip > memory.kv_per_slot
    assert memory.audio_per_clip > 0
    capped = auto_batch_size(60 * GIB, e4b_text_config(), 750, 80, 256, prefill_clips=32)
    assert capped > auto_batch_size(60 * GIB, e4b_text_config(), 750, 80, 256)
