"""The seed recipe as config: defaults, YAML file, overrides, validation, the CLI flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ovoz.errors import ConfigError
from ovoz.train.config import FIELDS, SEED_RECIPE, TrainConfig, from_dict, load_recipe, read_yaml, resolve_config


def test_seed_yaml_equals_the_dataclass_defaults():
    assert load_recipe("seed") == TrainConfig()
    assert set(read_yaml(SEED_RECIPE)) == set(FIELDS)  # every field documented in the YAML


def test_seed_recipe_values():
    c = TrainConfig()
    assert (c.lora_r, c.lora_alpha, c.lora_dropout, c.lora_bias) == (8, 16, 0.0, "none")
    assert (c.batch_size, c.grad_accum, c.learning_rate, c.lr_scheduler, c.warmup) == (8, 1, 5e-5, "cosine", 0.03)
    assert (c.optimizer, c.weight_decay, c.seed, c.max_seq_length, c.epochs) == ("adamw_8bit", 0.001, 3407, 8192, 1.0)
    assert c.load_in_4bit and c.adapter is None and not c.loss_on_prompt


def test_file_then_flags_override(tmp_path):
    file = tmp_path / "my.yaml"
    file.write_text("max_steps: 7\nlearning_rate: 1.0e-4\nepochs: 2\n", encoding="utf-8")
    c = resolve_config(file, {"max_steps": 9})
    assert (c.max_steps, c.learning_rate, c.epochs) == (9, 1e-4, 2.0)
    assert isinstance(c.epochs, float)


@pytest.mark.parametrize("changes, message", [
    ({"lora_r": 0}, "lora_r"),
    ({"learning_rate": 5}, "learning_rate"),
    ({"max_clip_s": 45}, "max_clip_s"),
    ({"long_clips": "trim"}, "long_clips"),
    ({"optimizer": "adam"}, "optimizer"),
    ({"lora_parts": ["vision"]}, "lora_parts"),
    ({"normalize_text": "shout"}, "normalize_text"),
    ({"warmup": 2.5}, "warmup"),
    ({"batch_size": "8"}, "batch_size"),
    ({"load_in_4bit": "yes"}, "load_in_4bit"),
])
def test_invalid_values_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(changes)


def test_unknown_field_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        from_dict({"learning_rat": 1e-4})


def test_saved_config_round_trips(tmp_path):
    c = TrainConfig().replace(max_steps=3, lora_parts=["language"])
    path = c.save(tmp_path)
    assert resolve_config(path) == c


def test_cli_flags_reach_the_config():
    from ovoz.cli import build_parser
    from ovoz.commands.train import resolve_from_args

    args = build_parser().parse_args(["train", "--max-steps", "5", "--lora-parts", "language,audio",
                                      "--no-gradient-checkpointing", "--eval-limit", "none", "--warmup", "10"])
    c = resolve_from_args(args)
    assert (c.max_steps, c.lora_parts, c.gradient_checkpointing, c.eval_limit, c.warmup) == (
        5, ["language", "audio"], False, None, 10.0)
    assert c.learning_rate == 5e-5  # untouched fields keep the seed's values


def test_bad_config_fails_before_heavy_imports(tmp_path):
    """Validation and path checks run before torch/transformers are imported."""
    code = (
        "import sys\nfrom ovoz.cli import main\n"
        f"rc = main(['train', '--data', {str(tmp_path / 'missing.jsonl')!r}, '--output-dir', {str(tmp_path)!r}])\n"
        "assert rc == 2, rc\nassert 'torch' not in sys.modules and 'trl' not in sys.modules, 'heavy import'\n"
        "rc = main(['train', '--lora-r', '0'])\nassert rc == 2\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "no such file" in done.stderr and "lora_r=0" in done.stderr
