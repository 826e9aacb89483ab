"""Each probe of transformers internals in ovoz.gemma.compat, checked against the installed release."""

from __future__ import annotations

import torch

from ovoz.gemma import compat


def test_cache_keyword_names_a_parameter_of_the_text_model(tiny_model):
    import inspect

    text = tiny_model.model.model.language_model
    keyword = compat.cache_keyword(text.forward)
    assert keyword in inspect.signature(text.forward).parameters
    assert keyword in ("cache", "past_key_values")


def test_norm_epsilon_reads_the_configured_value():
    from transformers.models.gemma4.modeling_gemma4 import Gemma4RMSNorm

    assert compat.norm_epsilon(Gemma4RMSNorm(8, eps=3e-5)) == 3e-5
    assert compat.norm_has_scale(Gemma4RMSNorm(8, with_scale=True))
    assert not compat.norm_has_scale(Gemma4RMSNorm(8, with_scale=False))


def test_gelu_tanh_is_recognised_on_the_mlp(tiny_model):
    mlp = tiny_model.model.model.language_model.layers[0].mlp
    assert compat.is_gelu_tanh(mlp.act_fn)
    assert not compat.is_gelu_tanh(torch.nn.SiLU())


def test_attention_is_selected_on_one_config_and_restored(tiny_model):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    calls = []

    def spy(module, query, key, value, attention_mask, **kwargs):
        calls.append(query.shape)
        return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, **kwargs)

    text = tiny_model.model.model.language_model
    before = compat.get_attention(text.config)
    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]
    compat.register_attention("ovoz_test_spy", spy)
    with compat.attention_implementation(text.config, "ovoz_test_spy"), torch.no_grad():
        text(input_ids=torch.tensor([[5, 6, 7]]))
    assert calls, "the registered function was not called"
    assert compat.get_attention(text.config) == before
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa  # transformers' own entry untouched


def test_checkpointing_probes(tiny_processor):
    from ovoz.gemma.testing import build_random_model, model_config

    model = build_random_model(model_config(tiny_processor.tokenizer))
    layer = model.model.language_model.layers[0]
    assert compat.checkpointing_function(layer) is None
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert callable(compat.checkpointing_function(layer))
    forward = compat.unwrapped_forward(type(layer))
    assert not compat.is_checkpointing_wrapper(forward)
    assert forward.__name__ == "forward"


def test_recompile_limit_is_only_raised():
    import torch._dynamo

    names = [n for n in compat.DYNAMO_RECOMPILE_LIMITS if hasattr(torch._dynamo.config, n)]
    assert names
    before = {n: getattr(torch._dynamo.config, n) for n in names}
    compat.raise_recompile_limit(1)
    assert {n: getattr(torch._dynamo.config, n) for n in names} == before
    with torch._dynamo.config.patch(**{n: 2 for n in names}):
        compat.raise_recompile_limit(5)
        assert all(getattr(torch._dynamo.config, n) == 5 for n in names)


def test_suppress_errors_is_restored():
    import torch._dynamo

    before = torch._dynamo.config.suppress_errors
    with compat.dynamo_suppress_errors(True):
        assert torch._dynamo.config.suppress_errors
    assert torch._dynamo.config.suppress_errors == before
