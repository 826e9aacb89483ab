"""The static-cache engine returns exactly plain greedy ``generate``'s tokens, whatever the batch composition."""

from __future__ import annotations

import numpy as np
import pytest

import ovoz
from ovoz.decoding import DecodeStats
from ovoz.gemma.generate import generate
from ovoz.gemma.static_engine import StaticEngine

SYSTEM, USER = ovoz.types.SYSTEM_PROMPT, ovoz.types.USER_PROMPT


@pytest.fixture(scope="module")
def real_clips(clips):
    return [ovoz.load_audio(c["path"]) for c in clips]


@pytest.fixture(scope="module")
def reference(tiny_model, real_clips):
    """Plain greedy generate, one clip at a time (no padding): the ground truth."""
    return [
        generate(tiny_model.model, tiny_model.processor, [clip], max_new_tokens=20, system=SYSTEM, user=USER)[0]
        for clip in real_clips
    ]


@pytest.mark.parametrize("slots", [1, 3, 8])
def test_tokens_match_generate_for_every_batch_composition(tiny_model, real_clips, reference, slots):
    """Mixed lengths (4-18 s), more clips than slots (refill), and per-clip caps that end rows early."""
    caps = [20, 5, 20, 13, 1, 20, 2]
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=slots, max_new_tokens=20)
    stats = DecodeStats()
    outputs = engine.run(real_clips, max_new_tokens=caps, system=SYSTEM, user=USER, stats=stats)
    for ref, out, cap in zip(reference, outputs, caps):
        assert out.token_ids == ref.token_ids[:cap]
        if cap == 20:
            assert out.stopped == ref.stopped
            assert out.avg_logprob == pytest.approx(ref.avg_logprob, abs=1e-4)
    assert stats.n_clips == len(real_clips)
    assert stats.n_new_tokens == sum(len(o.token_ids) for o in outputs)


def test_rows_that_stop_early_free_their_slot(tiny_model, real_clips, reference):
    """Duplicated short clips finish at different steps; the queue drains through 2 slots."""
    clips = [real_clips[i] for i in (4, 0, 4, 6, 1)]
    caps = [3, 20, 20, 7, 20]
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=2, max_new_tokens=20)
    outputs = engine.run(clips, max_new_tokens=caps, system=SYSTEM, user=USER)
    for index, out, cap in zip((4, 0, 4, 6, 1), outputs, caps):
        assert out.token_ids == reference[index].token_ids[:cap]


def test_padding_in_a_shared_prefill_does_not_change_results(tiny_model, real_clips, reference):
    """A 4 s and an 18 s clip prefilled together (heavy left padding) give their solo results."""
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=2, max_new_tokens=20)
    outputs = engine.run([real_clips[2], real_clips[5]], max_new_tokens=20, system=SYSTEM, user=USER)
    assert outputs[0].token_ids == reference[2].token_ids
    assert outputs[1].token_ids == reference[5].token_ids


def test_transcriber_uses_the_engine_on_request(tiny_model_dir, real_clips, reference):
    model = ovoz.load(tiny_model_dir, None, device="cpu", dtype="float32", engine="static")
    outputs = model.generate_clips(real_clips[:3], ovoz.TranscribeOptions(max_new_tokens=20, batch_size=2))
    assert [o.token_ids for o in outputs] == [r.token_ids for r in reference[:3]]
    assert set(model.decoder._static) == {2}  # one engine, built for the batch size


def test_engine_refuses_caps_beyond_its_cache(tiny_model, real_clips):
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=1, max_new_tokens=4)
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.run(real_clips[:1], max_new_tokens=5, system=SYSTEM, user=USER)


def test_silence_and_noise_clips(tiny_model):
    rng = np.random.default_rng(0)
    clips = [np.zeros(16000, np.float32), (rng.standard_normal(48000) * 0.1).astype(np.float32)]
    expected = [
        generate(tiny_model.model, tiny_model.processor, [c], max_new_tokens=8, system=SYSTEM, user=USER)[0]
        for c in clips
    ]
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=2, max_new_tokens=8)
    outputs = engine.run(clips, max_new_tokens=8, system=SYSTEM, user=USER)
    assert [o.token_ids for o in outputs] == [e.token_ids for e in expected]


def test_unmerged_adapter_runs_through_the_engine(tiny_model_dir, peft_adapter_dir, real_clips):
    """A PEFT-wrapped model (how a 4-bit base keeps its adapter) decodes the same in both paths."""
    options = ovoz.TranscribeOptions(max_new_tokens=12, batch_size=2)
    plain = ovoz.load(tiny_model_dir, peft_adapter_dir, device="cpu", dtype="float32", merge_adapter=False,
                      engine="generate")
    static = ovoz.load(tiny_model_dir, peft_adapter_dir, device="cpu", dtype="float32", merge_adapter=False,
                       engine="static")
    expected = [plain.generate_clips([clip], options)[0].token_ids for clip in real_clips[:3]]
    assert [o.token_ids for o in static.generate_clips(real_clips[:3], options)] == expected


def test_30_s_clips_fit_the_cache(tiny_model, clips):
    """The longest clip one prompt holds (750 audio tokens) plus the byte-level test tokenizer's long prompt."""
    thirty = np.concatenate([ovoz.load_audio(c["path"]) for c in clips])[: 30 * 16000]
    expected = generate(tiny_model.model, tiny_model.processor, [thirty], max_new_tokens=6, system=SYSTEM, user=USER)
    engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=2, max_new_tokens=6)
    outputs = engine.run([thirty, thirty[: 5 * 16000]], max_new_tokens=6, system=SYSTEM, user=USER)
    assert outputs[0].token_ids == expected[0].token_ids
    with pytest.raises(ValueError, match="prompts take more"):
        engine.run([thirty], max_new_tokens=6, system=SYSTEM * 3, user=USER)


def test_prefill_runs_kv_shared_layers_on_the_last_position_only(tiny_model, real_clips, reference):
    """Gemma 4's KV-shared layers see one position per row in prefill; the tokens stay those of ``generate``."""
    text = tiny_model.model.model.language_model
    shared = [layer for layer in text.layers if layer.self_attn.is_kv_shared_layer]
    owners = [layer for layer in text.layers if not layer.self_attn.is_kv_shared_layer]
    assert shared and owners
    seen: dict[str, list[int]] = {"shared": [], "owner": []}
    handles = [layer.mlp.register_forward_hook(lambda m, a, o, k=kind: seen[k].append(a[0].shape[1]))
               for kind, layers in (("shared", shared), ("owner", owners)) for layer in layers]
    try:
        engine = StaticEngine(tiny_model.model, tiny_model.processor, slots=2, max_new_tokens=20)
        outputs = engine.run(real_clips[:2], max_new_tokens=20, system=SYSTEM, user=USER)
    finally:
        for handle in handles:
            handle.remove()
    assert set(seen["shared"]) == {1}  # prefill and decode alike
    assert max(seen["owner"]) > 100  # the full prompt
    assert [o.token_ids for o in outputs] == [r.token_ids for r in reference[:2]]
