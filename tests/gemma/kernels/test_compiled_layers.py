"""Regional compilation of the decoder/conformer layers gives the eager loss and gradients, with checkpointing too.

The CPU suite compiles with the ``aot_eager`` backend: dynamo's capture and AOT autograd (where graph breaks,
guards and the checkpointing interplay live) without inductor's code generation, which takes minutes on a CPU.
The GPU benchmark (benchmarks/train_step.py) compiles with inductor.
"""

from __future__ import annotations

import numpy as np
import pytest
from train_helpers import lora_model_and_processor


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    from ovoz.train.collator import AudioCollator

    model, processor = lora_model_and_processor(tiny_model_dir)
    rng = np.random.default_rng(3)
    examples = [{"audio": rng.standard_normal(n).astype(np.float32) * 0.1, "text": text}
                for n, text in zip((16_000, 24_000), ("Salom", "Bugun havo yaxshi"))]
    return model, AudioCollator(processor)(examples)


def loss_and_grads(model, batch):
    from ovoz.train.loss import selective_loss

    model.zero_grad()
    loss, _ = selective_loss(model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("checkpointing", [False, True])
def test_compiled_layers_give_the_eager_loss_and_gradients(setup, checkpointing):
    import torch

    from ovoz.gemma.kernels.compiled_layers import compile_layers, uncompile_layers

    model, batch = setup
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    try:
        eager_loss, eager_grads = loss_and_grads(model, batch)
        config = model.config
        n_layers = config.text_config.num_hidden_layers + config.audio_config.num_hidden_layers
        assert compile_layers(model, backend="aot_eager") == n_layers
        assert compile_layers(model, backend="aot_eager") == 0  # already compiled
        loss, grads = loss_and_grads(model, batch)
        again, _ = loss_and_grads(model, batch)  # the cached graphs
    finally:
        restored = uncompile_layers(model)
        model.gradient_checkpointing_disable()
    assert restored == n_layers
    assert not any("forward" in vars(module) for module in model.modules())
    torch.testing.assert_close(loss, eager_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, eager_loss, rtol=1e-5, atol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_compile_setting(monkeypatch):
    from ovoz.errors import DependencyError
    from ovoz.gemma.kernels import compiled_layers as compiled
    from ovoz.gemma.training import use_compiled_layers

    assert not use_compiled_layers("auto", "cpu")  # auto compiles for CUDA only
    assert not use_compiled_layers("off", "cuda")
    assert use_compiled_layers("on", "cpu")
    monkeypatch.setattr(compiled, "available", lambda device: False)
    with pytest.raises(DependencyError, match="compile-layers off"):
        use_compiled_layers("on", "cuda")
    assert not use_compiled_layers("auto", "cuda")
    monkeypatch.setattr(compiled, "available", lambda device: True)
    assert use_compiled_layers("auto", "cuda")


def test_layers_run_eagerly_without_gradients(setup):
    """Evaluation (no gradients, a KV cache) never goes through the compiled training graphs."""
    import torch

    from ovoz.gemma.kernels.compiled_layers import compile_layers, uncompile_layers

    model, batch = setup
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        expected = model(**inputs).logits
    compile_layers(model, backend="aot_eager")
    try:
        with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=True):
            torch._dynamo.utils.counters.clear()
            logits = model(**inputs).logits
            frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    finally:
        uncompile_layers(model)
    torch.testing.assert_close(logits, expected)
    assert frames == 0


def test_gpus_older_than_volta_are_not_compiled_for(monkeypatch):
    import importlib.util

    import torch

    from ovoz.gemma.kernels import compiled_layers as compiled

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # Triton "installed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (6, 1))
    assert not compiled.available("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 9))
    assert compiled.available("cuda:0")


def test_fall_back_lets_a_failing_graph_run_eagerly(setup):
    """``fall_back``: a graph that fails to compile runs eagerly (same output); without it the error stops the run;
    dynamo's process-wide ``suppress_errors`` is never left changed."""
    import torch

    from ovoz.gemma.kernels.compiled_layers import compile_layers, uncompile_layers

    def failing_backend(graph, example_inputs):
        raise RuntimeError("this backend cannot compile anything")

    model, _ = setup
    text = model.base_model.model.model.language_model if hasattr(model, "base_model") else model.model.language_model
    ids = torch.randint(10, 200, (1, 6))
    model.train()
    try:
        with torch.no_grad():
            expected = text(input_ids=ids).last_hidden_state
        torch._dynamo.reset()
        compile_layers(model, backend=failing_backend, fall_back=True)
        with torch.enable_grad():
            got = text(input_ids=ids).last_hidden_state
        assert torch.allclose(got, expected, atol=1e-6)
        assert not torch._dynamo.config.suppress_errors
        uncompile_layers(model)
        torch._dynamo.reset()
        compile_layers(model, backend=failing_backend)
        with pytest.raises(Exception, match="cannot compile"), torch.enable_grad():
            text(input_ids=ids)
        assert not torch._dynamo.config.suppress_errors
    finally:
        uncompile_layers(model)
        torch._dynamo.reset()
        model.eval()
