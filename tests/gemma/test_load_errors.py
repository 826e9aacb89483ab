"""Model folders and adapters that cannot work: one typed line each, found before the base's weights load where
possible, in the caller's own terms (``base=`` from Python, ``--base`` from the command line)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import ovoz
from ovoz.cli import EXIT_MODEL, EXIT_OK, EXIT_USAGE, main
from ovoz.errors import AdapterError, ModelLoadError, ModelNotFoundError


@pytest.fixture(scope="module")
def corrupt_base(tiny_model_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corrupt") / "model"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # an interrupted download
    return folder


@pytest.fixture(scope="module")
def other_base_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """An adapter trained on another tiny base (hidden size 96 instead of 64): same module names, other shapes."""
    from ovoz.gemma.testing import build_random_model, build_tokenizer, model_config, save_adapter

    root = tmp_path_factory.mktemp("other")
    tokenizer = build_tokenizer()
    config = model_config(tokenizer, "tiny")
    config.text_config.hidden_size = 96
    build_random_model(config, seed=3).save_pretrained(root / "base")
    for file in tiny_model_dir.iterdir():
        if not (root / "base" / file.name).exists():
            shutil.copy(file, root / "base" / file.name)
    return save_adapter(root / "base", root / "adapter", style="peft")


def test_a_corrupt_base_is_a_model_load_error(corrupt_base, tmp_path, capsys):
    with pytest.raises(ModelLoadError) as caught:
        ovoz.load(corrupt_base, adapter=None, device="cpu", dtype="float32")
    message = str(caught.value)
    assert message.startswith(f"base={str(corrupt_base)!r}: the model weights could not be loaded")
    assert "\n" not in message and "Download the model again" in message
    clip = tmp_path / "a.wav"
    import numpy as np
    import soundfile as sf

    sf.write(clip, np.zeros(1600, np.float32) + 0.1, 16000)
    assert main(["transcribe", str(clip), "--base", str(corrupt_base), "--no-adapter", "--device", "cpu"]) == EXIT_MODEL
    err = capsys.readouterr().err
    assert f"ovoz: error: --base {corrupt_base}: the model weights could not be loaded" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_base_folder_without_config_json(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="holds no config.json; give a Gemma 4 model folder"):
        ovoz.load(folder, adapter=None, device="cpu")
    from ovoz.gemma.training import load_for_training
    from ovoz.train import resolve_config

    config = resolve_config(None, {"base": str(folder), "data": str(tmp_path / "x.jsonl"),
                                   "output_dir": str(tmp_path / "out")})
    with pytest.raises(ModelLoadError, match="holds no config.json") as caught:
        load_for_training(config, "cpu")
    assert "ignore_mismatched_sizes" not in str(caught.value)


def test_an_adapter_of_another_base_is_one_line(tiny_model_dir, other_base_adapter, tmp_path):
    with pytest.raises(AdapterError) as caught:
        ovoz.load(tiny_model_dir, adapter=other_base_adapter, device="cpu", dtype="float32")
    message = str(caught.value)
    assert "\n" not in message and "trained on another base model" in message
    assert str(other_base_adapter.parent / "base") in message  # the base it records
    from ovoz.gemma.training import load_for_training
    from ovoz.train import resolve_config

    config = resolve_config(None, {"base": str(tiny_model_dir), "adapter": str(other_base_adapter),
                                   "data": str(tmp_path / "x.jsonl"), "output_dir": str(tmp_path / "out")})
    with pytest.raises(AdapterError, match="trained on another base model") as caught:
        load_for_training(config, "cpu")
    assert "\n" not in str(caught.value) and "size mismatch" not in str(caught.value)


def test_offline_names_every_missing_piece_in_the_callers_terms(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError) as caught:
        ovoz.load(tmp_path / "no-base", adapter="nobody/no-adapter", local_files_only=True)
    message = str(caught.value)
    assert f"base={str(tmp_path / 'no-base')!r}: no such folder" in message
    assert "adapter='nobody/no-adapter': it is not in the local Hugging Face cache" in message
    assert "adapter='/path/to/folder'" in message and "--" not in message.replace("--local-dir", "")
    # An adapter folder holds adapter_config.json, never a bare config.json.
    assert not re.search(r"(?<!adapter_)config\.json", message.split("adapter=", 1)[1])
    clip = tmp_path / "a.wav"
    import numpy as np
    import soundfile as sf

    sf.write(clip, np.zeros(1600, np.float32) + 0.1, 16000)
    assert main(["transcribe", str(clip), "--base", str(tmp_path / "no-base"), "--adapter", "nobody/no-adapter",
                 "--local-files-only"]) == EXIT_MODEL
    err = capsys.readouterr().err
    assert err.startswith(f"ovoz: error: --base {tmp_path / 'no-base'}: no such folder")
    assert "--adapter nobody/no-adapter: it is not in the local" in err and "--adapter /path/to/folder" in err


def test_a_missing_input_is_reported_without_loading_the_model(tmp_path, monkeypatch, capsys):
    """The default model offline and a typo in the input: the input is named, not the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert main(["transcribe", str(tmp_path / "typo.wav")]) == 1
    err = capsys.readouterr().err
    assert f"failed: {tmp_path / 'typo.wav'}: no such file" in err and "hub" not in err.lower()


def test_unwritable_output_folder_is_found_before_the_model_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    clip = tmp_path / "a.wav"
    import numpy as np
    import soundfile as sf

    sf.write(clip, np.zeros(1600, np.float32) + 0.1, 16000)
    (tmp_path / "taken").write_text("a file")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        assert main(["transcribe", str(clip), "-o", str(out)]) == EXIT_USAGE  # the hub is never asked
        err = capsys.readouterr().err
        assert err.startswith(f"ovoz: error: --output-dir {out}: ") and "folder" in err


def test_merge_without_base_uses_the_base_the_adapter_records(tiny_model_dir, peft_adapter_dir, tmp_path):
    from ovoz.gemma.merge import MERGE_INFO_NAME, base_of_adapter

    assert base_of_adapter(peft_adapter_dir) == str(tiny_model_dir)
    out = tmp_path / "merged"
    assert main(["merge", "--adapter", str(peft_adapter_dir), "-o", str(out), "--dtype", "float32"]) == EXIT_OK
    assert json.loads((out / MERGE_INFO_NAME).read_text())["base"] == str(tiny_model_dir)
    config = json.loads((peft_adapter_dir / "adapter_config.json").read_text())
    seedlike = tmp_path / "seedlike"
    shutil.copytree(peft_adapter_dir, seedlike)
    config["base_model_name_or_path"] = "unsloth/gemma-4-e4b-it-unsloth-bnb-4bit"  # what the seed records
    (seedlike / "adapter_config.json").write_text(json.dumps(config))
    assert base_of_adapter(seedlike) == "unsloth/gemma-4-E4B-it"  # 4-bit cannot be merged: its original


def test_make_test_model_refuses_a_non_empty_folder_and_a_model_too_big(tmp_path, capsys):
    from ovoz.commands.dev import check_memory

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    assert main(["make-test-model", str(tmp_path / "full")]) == EXIT_USAGE
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"
    with pytest.raises(ovoz.ConfigError, match=r"needs about 36.8 GB of memory, 24.0 GB are available; pass "
                                                r"--dtype bfloat16 \(about 18.4 GB\)"):
        check_memory("e4b", "float32", 32 * 10**9, 24 * 10**9)
    check_memory("e4b", "bfloat16", 16 * 10**9, 24 * 10**9)  # fits: no error
