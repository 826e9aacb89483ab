"""Kernels and attention apply to one model instance: two engines in two threads, and a plain model afterwards."""

from __future__ import annotations

import threading

import pytest
import torch

import ovoz
from ovoz.gemma import testing
from ovoz.gemma.generate import generate
from ovoz.gemma.kernels import fused
from ovoz.gemma.static_engine import StaticEngine

SYSTEM, USER = ovoz.types.SYSTEM_PROMPT, ovoz.types.USER_PROMPT


@pytest.fixture
def eager_backend(monkeypatch):
    monkeypatch.setattr(fused, "BACKEND", "eager")


def test_two_engines_in_two_threads_return_generates_tokens(tiny_processor, clips, eager_backend):
    audio = [ovoz.load_audio(c["path"])[: 16000 * 4] for c in clips[:3]]
    models = [testing.build_random_model(testing.model_config(tiny_processor.tokenizer), seed=seed) for seed in (11, 12)]
    expected = [[g.token_ids for g in generate(m, tiny_processor, audio, max_new_tokens=10, system=SYSTEM,
                                               user=USER)] for m in models]
    engines = [StaticEngine(m, tiny_processor, slots=2, max_new_tokens=10, fused_kernels=True) for m in models]
    got: dict[int, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            start.wait()
            got[i] = [[g.token_ids for g in engines[i].run(audio, max_new_tokens=10, system=SYSTEM, user=USER)]
                      for _ in range(2)]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert expected[0] != expected[1]  # the two models differ, so a crossed wire would show
    for i in range(2):
        assert got[i] == [expected[i], expected[i]]


def test_a_plain_model_afterwards_gives_its_own_outputs(tiny_processor, clips, eager_backend):
    audio = [ovoz.load_audio(clips[0]["path"])[: 16000 * 3]]
    fresh = testing.build_random_model(testing.model_config(tiny_processor.tokenizer), seed=21)
    ids = torch.tensor([[2, 105, 9, 10, 11, 12]])
    with torch.no_grad():
        before = fresh(input_ids=ids).logits
    engine_model = testing.build_random_model(testing.model_config(tiny_processor.tokenizer), seed=22)
    StaticEngine(engine_model, tiny_processor, slots=1, max_new_tokens=6, fused_kernels=True).run(
        audio, max_new_tokens=6, system=SYSTEM, user=USER)
    again = testing.build_random_model(testing.model_config(tiny_processor.tokenizer), seed=21)  # loaded after the engine ran
    with torch.no_grad():
        assert torch.equal(fresh(input_ids=ids).logits, before)
        assert torch.equal(again(input_ids=ids).logits, before)
    assert not any("forward" in vars(m) for m in engine_model.modules())
    assert engine_model.model.language_model.config._attn_implementation == again.model.language_model.config._attn_implementation
