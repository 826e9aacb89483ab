"""Loading Gemma 4 + adapters from local folders, the processor's audio tokens, and greedy transcription."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import ovoz
from ovoz.errors import AdapterError, AudioTooLongError, ConfigError, ModelLoadError, ModelNotFoundError
from ovoz.gemma.generate import prepare_inputs
from ovoz.gemma.prompt import render_prompt
from ovoz.gemma.testing import save_adapter


@pytest.mark.parametrize("seconds", [1.0, 4.4, 10.0, 29.96])
def test_audio_tokens_are_25_per_second(tiny_model, seconds):
    processor = tiny_model.processor
    inputs = prepare_inputs(processor, [np.zeros(int(seconds * 16000), np.float32)], "s", "u")
    ids = inputs["input_ids"][0]
    n_audio = int((ids == processor.audio_token_id).sum())
    assert n_audio == pytest.approx(25 * seconds, abs=1)
    # <|audio> N x <|audio|> <audio|>, once
    boa = processor.tokenizer.convert_tokens_to_ids("<|audio>")
    eoa = processor.tokenizer.convert_tokens_to_ids("<audio|>")
    assert int((ids == boa).sum()) == 1 and int((ids == eoa).sum()) == 1


def test_prompt_tokens_round_trip(tiny_model):
    processor = tiny_model.processor
    inputs = prepare_inputs(processor, [np.zeros(16000, np.float32)], ovoz.types.SYSTEM_PROMPT, ovoz.types.USER_PROMPT)
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    expected = render_prompt().replace("<|audio|>", "<|audio>" + "<|audio|>" * 25 + "<audio|>")
    assert text == expected
    assert int((inputs["input_ids"][0] == processor.tokenizer.bos_token_id).sum()) == 1  # no double <bos>
    assert set(inputs) >= {"input_ids", "attention_mask", "mm_token_type_ids", "input_features", "input_features_mask"}


def test_transcribe_returns_a_typed_result(tiny_model, clip_22k):
    result = tiny_model.transcribe(clip_22k, max_new_tokens=12)
    assert isinstance(result, ovoz.Transcript)
    assert result.duration_s == pytest.approx(4.435, abs=0.01)
    (segment,) = result.segments
    assert segment.start_s == 0.0 and segment.end_s == result.duration_s
    assert 1 <= segment.n_tokens <= 12 and segment.avg_logprob < 0
    assert result.options.max_new_tokens == 12
    assert result.model["base"].endswith("model") and result.model["adapter"] is None
    assert {"decode_audio_s", "generate_s", "total_s"} <= set(result.timings)


def test_greedy_output_matches_plain_generate(tiny_model, clip_22k):
    """ovoz's path returns exactly the tokens of a hand-written HF generate call on the same prompt."""
    model, processor = tiny_model.model, tiny_model.processor
    audio = ovoz.load_audio(clip_22k)
    inputs = processor(text=[render_prompt()], audio=[audio], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    expected = out[0, inputs["input_ids"].shape[1]:].tolist()
    stops = {processor.tokenizer.convert_tokens_to_ids("<turn|>"), processor.tokenizer.eos_token_id}
    expected = expected[: next((i for i, t in enumerate(expected) if t in stops), len(expected))]
    (generation,) = tiny_model.generate_clips([audio], ovoz.TranscribeOptions(max_new_tokens=10))
    assert list(generation.token_ids) == expected


def test_streaming_callback_receives_the_text(tiny_model, clip_22k):
    pieces: list[str] = []
    result = tiny_model.transcribe(clip_22k, max_new_tokens=12, on_text=pieces.append)
    assert pieces and "".join(pieces).strip() == result.text


def test_clips_over_30_s_never_reach_the_processor(tiny_model):
    """The feature extractor would truncate silently: the engine refuses instead."""
    with pytest.raises(AudioTooLongError, match="30 s"):
        tiny_model.generate_clips([np.zeros(31 * 16000, np.float32)], ovoz.TranscribeOptions(max_new_tokens=2))


@pytest.fixture(scope="module")
def twin_adapters(tiny_model_dir, tmp_path_factory):
    """The same random LoRA weights saved the PEFT way and the Unsloth way."""
    root = tmp_path_factory.mktemp("twins")
    return (
        save_adapter(tiny_model_dir, root / "peft", style="peft", seed=7),
        save_adapter(tiny_model_dir, root / "unsloth", style="unsloth", seed=7),
    )


def test_unsloth_adapter_fails_in_stock_peft_but_loads_in_ovoz(tiny_model_dir, twin_adapters):
    from peft import PeftModel
    from transformers import Gemma4ForConditionalGeneration

    _, unsloth = twin_adapters
    assert json.loads((unsloth / "adapter_config.json").read_text())["target_modules"][0] == "down_proj"
    base = Gemma4ForConditionalGeneration.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="not supported"):
        PeftModel.from_pretrained(base, unsloth)
    model = ovoz.load(tiny_model_dir, unsloth, device="cpu", dtype="float32")
    assert model.info.adapted_parts == {"language tower": 24, "audio tower": 15, "audio embedder": 1, "other": 0}


def test_both_adapter_layouts_give_identical_output_that_differs_from_the_base(
    tiny_model, tiny_model_dir, twin_adapters, clip_22k
):
    peft_dir, unsloth_dir = twin_adapters
    base_text = tiny_model.transcribe(clip_22k, max_new_tokens=16).segments[0]
    outputs = []
    for folder in (peft_dir, unsloth_dir):
        model = ovoz.load(tiny_model_dir, folder, device="cpu", dtype="float32")
        outputs.append(model.generate_clips([ovoz.load_audio(clip_22k)], ovoz.TranscribeOptions(max_new_tokens=16))[0])
    assert outputs[0].token_ids == outputs[1].token_ids
    assert outputs[0].text != base_text.text


def test_unmerged_adapter_gives_the_same_tokens_as_merged(tiny_model_dir, twin_adapters, clip_22k):
    peft_dir, _ = twin_adapters
    audio = [ovoz.load_audio(clip_22k)]
    options = ovoz.TranscribeOptions(max_new_tokens=16)
    merged = ovoz.load(tiny_model_dir, peft_dir, device="cpu", dtype="float32")
    unmerged = ovoz.load(tiny_model_dir, peft_dir, device="cpu", dtype="float32", merge_adapter=False)
    assert merged.info.merged and not unmerged.info.merged
    assert merged.generate_clips(audio, options)[0].token_ids == unmerged.generate_clips(audio, options)[0].token_ids


def test_language_only_adapter_is_reported(tiny_model_dir, tmp_path, caplog):
    folder = save_adapter(tiny_model_dir, tmp_path / "lang", parts=("language",))
    with caplog.at_level("WARNING", logger="ovoz"):
        model = ovoz.load(tiny_model_dir, folder, device="cpu", dtype="float32")
    assert model.info.adapted_parts["audio tower"] == 0
    assert "language tower only" in caplog.text


def test_adapter_errors(tiny_model_dir, peft_adapter_dir, tmp_path):
    with pytest.raises(AdapterError, match="adapter_config.json"):
        ovoz.load(tiny_model_dir, tmp_path, device="cpu")
    broken = shutil.copytree(peft_adapter_dir, tmp_path / "broken")
    (broken / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(AdapterError, match="cannot be read"):
        ovoz.load(tiny_model_dir, broken, device="cpu")
    foreign = shutil.copytree(peft_adapter_dir, tmp_path / "foreign")
    from safetensors.torch import load_file, save_file

    weights = load_file(foreign / "adapter_model.safetensors")
    save_file({k.replace("layers.0.", "layers.99."): v for k, v in weights.items()},
              foreign / "adapter_model.safetensors")
    with pytest.raises(AdapterError, match="do not exist in the base"):
        ovoz.load(tiny_model_dir, foreign, device="cpu")


def test_unreachable_hub_gives_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError) as caught:
        ovoz.load("unsloth/gemma-4-E4B-it", None, device="cpu", local_files_only=True)
    message = str(caught.value)
    # From Python the message names the argument (the ovoz command names its flags: tests/test_transcribe_cli.py).
    assert "base='unsloth/gemma-4-E4B-it'" in message and "base='/path/to/folder'" in message


def test_bad_model_folders(tmp_path, tiny_model_dir):
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        ovoz.load(str(tmp_path / "nope"), None, device="cpu")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelLoadError, match="model_type='llama'"):
        ovoz.load(tmp_path / "other", None, device="cpu")
    with pytest.raises(ConfigError, match="dtype"):
        ovoz.load(tiny_model_dir, None, device="cpu", dtype="int3")
    with pytest.raises(ConfigError, match="CUDA"):
        ovoz.load(tiny_model_dir, None, device="cpu", quantization="4bit")


def test_bfloat16_is_the_default(tiny_model_dir):
    model = ovoz.load(tiny_model_dir, None, device="cpu")
    assert model.info.dtype == "bfloat16"
    assert next(model.model.parameters()).dtype == torch.bfloat16


def test_import_ovoz_is_light():
    import subprocess
    import sys

    code = "import sys, ovoz; heavy = [m for m in ('torch', 'transformers', 'numpy', 'peft') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
