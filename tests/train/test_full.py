"""train_mode=full: every weight trained, no adapter; the saved folder is a model that ``--base`` loads."""

from __future__ import annotations

import pytest
from train_helpers import losses, tiny_config

from ovoz.errors import ConfigError


def test_full_run_trains_every_weight_and_saves_a_loadable_model(tiny_model_dir, uz_speech, tmp_path):
    import torch
    from safetensors.torch import load_file

    import ovoz
    from ovoz.train import train

    out = tmp_path / "full"
    config = tiny_config(tiny_model_dir, uz_speech["train"], out, train_mode="full", load_in_4bit=False,
                         learning_rate=1e-3, max_steps=3, eval_data=str(uz_speech["dev"]))
    result = train(config)
    assert result.global_step == 3 and len(losses(result)) == 3
    for name in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "README.md"):
        assert (out / name).exists(), name
    assert not (out / "adapter_config.json").exists()
    import json

    state = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))
    assert [row["step"] for row in state["log_history"] if "loss" in row] == [1, 2, 3]
    assert any("eval_cer" in row for row in state["log_history"])  # the dev curve is in it too
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {key for key in before if key in after and not torch.equal(before[key], after[key].to(before[key]))}
    # Weights of the text tower, the audio tower and the embedder all moved (not only adapter-like parts).
    for part in ("language_model.layers.0.self_attn.q_proj", "audio_tower", "embed_audio",
                 "language_model.embed_tokens_per_layer"):
        assert any(part in key for key in changed), part
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "library_name: transformers" in card and "| train_mode | `full` |" in card
    model = ovoz.load(base=out, adapter=None, device="cpu", dtype="float32")
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved.get("use_cache", True) and saved["text_config"]["use_cache"]  # inference keeps its KV cache
    assert isinstance(model.transcribe(uz_speech["folder"] / "clip0.wav", max_new_tokens=4).text, str)


@pytest.mark.parametrize("changes, field", [
    (dict(load_in_4bit=True), "load_in_4bit"),
    (dict(load_in_4bit=False, adapter="some/adapter"), "adapter"),
    (dict(load_in_4bit=False, per_layer_embeddings="cpu"), "per_layer_embeddings"),
    (dict(load_in_4bit=False, backend="unsloth"), "backend"),
])
def test_full_mode_refuses_what_it_cannot_train(changes, field):
    from ovoz.train import resolve_config

    with pytest.raises(ConfigError, match=field):
        resolve_config(None, {"train_mode": "full", **changes})
    with pytest.raises(ConfigError, match="train_mode"):
        resolve_config(None, {"train_mode": "partial"})


def test_max_time_s_stops_a_run_early_and_saves(tiny_model_dir, uz_speech, tmp_path):
    from ovoz.train import train

    config = tiny_config(tiny_model_dir, uz_speech["train"], tmp_path / "out", max_steps=50, max_time_s=0.001)
    result = train(config)
    assert result.global_step == 1 and (tmp_path / "out" / "adapter_model.safetensors").exists()
