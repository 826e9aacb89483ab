"""The training configuration: one frozen dataclass, the seed recipe as its defaults, validated in one place.

``recipes/seed.yaml`` (shipped in the package) documents the same defaults field by field; a test keeps the two
identical. A run's config is resolved as: defaults < ``--config FILE`` < command-line flags, validated before
anything heavy is imported, and saved as ``ovoz_train.yaml`` beside the adapter.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..types import MAX_CLIP_S, SYSTEM_PROMPT, USER_PROMPT

logger = logging.getLogger(__name__)

RECIPES_DIR = Path(__file__).parent / "recipes"
SEED_RECIPE = RECIPES_DIR / "seed.yaml"
SAVED_CONFIG_NAME = "ovoz_train.yaml"
"""The resolved config, written beside the adapter."""

BACKENDS = ("auto", "unsloth", "transformers")
TRAIN_MODES = ("lora", "full")
LONG_CLIP_POLICIES = ("drop", "split")
PRECISIONS = ("auto", "bf16", "fp32")
OPTIMIZERS = ("adamw_8bit", "adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "sgd", "adafactor")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
LORA_PARTS = ("language", "audio", "audio_attention", "embedder")
ON_BAD_ROW = ("skip", "raise")
SWITCHES = ("auto", "on", "off")
PLACES = ("auto", "gpu", "cpu")


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; the defaults are the seed recipe (see ``recipes/seed.yaml``)."""

    # model
    base: str = _f("unsloth/gemma-4-E4B-it", "base model: hub id or local folder")
    adapter: str | None = _f(None, "existing LoRA adapter to continue training (hub id or folder)")
    load_in_4bit: bool = _f(True, "QLoRA: 4-bit base through bitsandbytes (CUDA only; ignored on CPU)")
    backend: str = _f("auto", "auto | unsloth | transformers")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N")
    local_files_only: bool = _f(False, "never contact the Hugging Face hub")
    train_mode: str = _f("lora", "lora: train a LoRA adapter on the frozen base (saves the adapter) | full: train "
                                 "every weight, no adapter (float32 weights, bf16 autocast on GPU; saves a whole "
                                 "model folder that --base loads; needs --no-load-in-4bit)")
    # LoRA
    lora_r: int = _f(8, "LoRA rank")
    lora_alpha: float = _f(16, "LoRA alpha")
    lora_dropout: float = _f(0.0, "LoRA dropout")
    lora_bias: str = _f("none", "none | all | lora_only")
    lora_parts: list[str] = _f(["language", "audio", "embedder"], "parts to adapt: language,audio,audio_attention,embedder")
    # data
    data: str | None = _f(None, "training corpus (JSONL, Common Voice, FLEURS, local HF dataset)")
    eval_data: str | None = _f(None, "dev corpus; WER/CER are reported during training")
    split: str = _f("train", "split of the training corpus")
    eval_split: str = _f("dev", "split of the dev corpus")
    text_column: str | None = _f(None, "transcript field (default: the format's)")
    data_format: str | None = _f(None, "jsonl | common_voice | fleurs | hf (default: detect)")
    on_bad_row: str = _f("skip", "skip (log and count) | raise (stop at the first bad row)")
    max_clip_s: float = _f(MAX_CLIP_S, "longest clip in seconds (at most 30)")
    long_clips: str = _f("drop", "clips over max_clip_s: drop | split (approximate transcript split)")
    max_seq_length: int = _f(8192, "drop examples with more tokens than this")
    normalize_text: str | None = _f(None, "normalize transcripts with this ovoz.text normalizer")
    shuffle_buffer: int = _f(1000, "streaming shuffle buffer (rows; 0 or 1 = keep the corpus order)")
    group_by_duration: int = _f(0, "sort each window of this many steps' examples by duration, so a batch holds "
                                   "clips of similar length and pads little; the window's batches keep a seeded "
                                   "random order (0 = off, the published recipe)")
    eval_limit: int | None = _f(None, "score at most this many dev clips")
    # prompt and loss
    system_prompt: str = _f(SYSTEM_PROMPT, "system turn of the trained prompt")
    user_prompt: str = _f(USER_PROMPT, "user instruction after the audio")
    loss_on_prompt: bool = _f(False, "also train on the prompt text (the seed notebook's behaviour)")
    # optimisation
    epochs: float = _f(1.0, "passes over the training corpus")
    max_steps: int | None = _f(None, "stop after this many optimizer steps (overrides epochs)")
    max_time_s: float | None = _f(None, "stop after this many seconds of training and save as at the end (the "
                                        "schedule still spans max_steps or epochs)")
    batch_size: int = _f(8, "examples per device per step")
    grad_accum: int = _f(1, "gradient accumulation steps")
    learning_rate: float = _f(5e-5, "peak learning rate")
    lr_scheduler: str = _f("cosine", "learning-rate schedule")
    warmup: float = _f(0.03, "warmup: fraction of steps if < 1, else steps")
    optimizer: str = _f("adamw_8bit", "optimizer (adamw_8bit needs CUDA; adamw_torch is used on CPU)")
    weight_decay: float = _f(0.001, "weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    precision: str = _f("auto", "auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32")
    gradient_checkpointing: bool = _f(True, "recompute activations in backward (less memory)")
    compile_layers: str = _f("auto", "torch.compile each decoder layer: auto (on for CUDA with Triton) | on | off; "
                                     "on the unsloth backend, 'on' keeps Unsloth's own compilation, auto and off "
                                     "disable it")
    device_features: str = _f("auto", "compute log-mel features on the training device, not in the collator on "
                                      "the CPU: auto (on for CUDA) | on | off")
    per_layer_embeddings: str = _f("auto", "where E4B's 5 GiB per-layer embedding table lives: auto (cpu when "
                                           "training on a GPU) | gpu | cpu")
    seed: int = _f(3407, "random seed (LoRA init, data order)")
    # checkpoints, evaluation, logging
    output_dir: str | None = _f(None, "where the adapter, checkpoints, logs and model card go")
    save_steps: int = _f(500, "checkpoint every N steps")
    save_total_limit: int | None = _f(3, "keep the newest N checkpoints")
    eval_steps: int = _f(500, "evaluate every N steps")
    eval_batch_size: int = _f(8, "dev clips decoded together")
    eval_max_new_tokens: int = _f(256, "token cap when decoding dev clips")
    eval_normalizer: str = _f("normalized", "normalizer applied before WER/CER")
    logging_steps: int = _f(10, "log the loss every N steps")
    report_to: list[str] = _f(["tensorboard"], "loggers: tensorboard, none, ...")
    progress_bar: bool = _f(True, "show a progress bar in the terminal")
    dataloader_workers: int = _f(0, "processes that decode audio and collate batches (0 = the training process; "
                                       "a manifest is one stream, so one worker does the work; drop counts are "
                                       "then only logged)")
    resume: bool = _f(False, "continue from the newest checkpoint in output_dir")

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, folder: str | Path) -> Path:
        """Write the config as ``ovoz_train.yaml`` into ``folder``."""
        path = Path(folder) / SAVED_CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def field_help(name: str) -> str:
    return FIELDS[name].metadata.get("help", "")


def _require(condition: bool, name: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{name}={value!r}: {expected}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(c: TrainConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field and what it accepts."""
    for name in ("base",):
        _require(isinstance(getattr(c, name), str) and getattr(c, name) != "", name, getattr(c, name), "give a string")
    for name in ("adapter", "data", "eval_data", "text_column", "data_format", "normalize_text", "output_dir"):
        value = getattr(c, name)
        _require(value is None or (isinstance(value, str) and value != ""), name, value, "give a string or null")
    for name in ("load_in_4bit", "local_files_only", "loss_on_prompt", "gradient_checkpointing", "progress_bar",
                 "resume"):
        _require(isinstance(getattr(c, name), bool), name, getattr(c, name), "give true or false")
    _require(c.backend in BACKENDS, "backend", c.backend, f"choose one of {', '.join(BACKENDS)}")
    _require(c.train_mode in TRAIN_MODES, "train_mode", c.train_mode, "choose lora or full")
    if c.train_mode == "full":
        _require(not c.load_in_4bit, "load_in_4bit", c.load_in_4bit,
                 "train_mode=full trains every weight and 4-bit weights cannot be trained; pass --no-load-in-4bit")
        _require(c.adapter is None, "adapter", c.adapter,
                 "train_mode=full trains the base itself; merge the adapter first (ovoz merge) and train that")
        _require(c.backend != "unsloth", "backend", c.backend, "train_mode=full runs on the transformers backend")
        _require(c.per_layer_embeddings != "cpu", "per_layer_embeddings", c.per_layer_embeddings,
                 "train_mode=full trains the per-layer embeddings, so they stay on the training device")
    _require(isinstance(c.device, str) and (c.device in ("auto", "cpu", "mps") or c.device.startswith("cuda")),
             "device", c.device, "choose auto, cpu, cuda or cuda:N")
    _require(_is_int(c.lora_r) and c.lora_r >= 1, "lora_r", c.lora_r, "give a positive integer")
    _require(_is_number(c.lora_alpha) and c.lora_alpha > 0, "lora_alpha", c.lora_alpha, "give a positive number")
    _require(_is_number(c.lora_dropout) and 0 <= c.lora_dropout < 1, "lora_dropout", c.lora_dropout,
             "give a number in [0, 1)")
    _require(c.lora_bias in ("none", "all", "lora_only"), "lora_bias", c.lora_bias, "choose none, all or lora_only")
    _require(isinstance(c.lora_parts, list) and c.lora_parts and all(p in LORA_PARTS for p in c.lora_parts),
             "lora_parts", c.lora_parts, f"give a non-empty list of {', '.join(LORA_PARTS)}")
    _require(c.data_format in (None, "jsonl", "common_voice", "fleurs", "hf"), "data_format", c.data_format,
             "choose jsonl, common_voice, fleurs, hf or null")
    _require(c.on_bad_row in ON_BAD_ROW, "on_bad_row", c.on_bad_row, "choose skip or raise")
    _require(_is_number(c.max_clip_s) and 1.0 <= c.max_clip_s <= MAX_CLIP_S, "max_clip_s", c.max_clip_s,
             f"give seconds between 1 and {MAX_CLIP_S:g} (Gemma 4 holds 30 s per prompt)")
    _require(c.long_clips in LONG_CLIP_POLICIES, "long_clips", c.long_clips, "choose drop or split")
    _require(_is_int(c.max_seq_length) and c.max_seq_length >= 64, "max_seq_length", c.max_seq_length,
             "give an integer of at least 64")
    if c.normalize_text is not None or c.eval_normalizer:
        from ..text import available_normalizers

        names = available_normalizers()
        _require(c.normalize_text in (None, *names), "normalize_text", c.normalize_text,
                 f"choose null or one of {', '.join(names)}")
        _require(c.eval_normalizer in names, "eval_normalizer", c.eval_normalizer, f"choose one of {', '.join(names)}")
    for name in ("shuffle_buffer", "dataloader_workers", "group_by_duration"):
        _require(_is_int(getattr(c, name)) and getattr(c, name) >= 0, name, getattr(c, name),
                 "give a non-negative integer")
    _require(c.max_time_s is None or (_is_number(c.max_time_s) and c.max_time_s > 0), "max_time_s", c.max_time_s,
             "give a positive number of seconds or null")
    for name in ("eval_limit", "max_steps", "save_total_limit"):
        value = getattr(c, name)
        _require(value is None or (_is_int(value) and value >= 1), name, value, "give a positive integer or null")
    for name in ("batch_size", "grad_accum", "save_steps", "eval_steps", "eval_batch_size", "eval_max_new_tokens",
                 "logging_steps"):
        _require(_is_int(getattr(c, name)) and getattr(c, name) >= 1, name, getattr(c, name),
                 "give a positive integer")
    _require(_is_int(c.seed), "seed", c.seed, "give an integer")
    _require(_is_number(c.epochs) and c.epochs > 0, "epochs", c.epochs, "give a positive number")
    _require(_is_number(c.learning_rate) and 0 < c.learning_rate < 1, "learning_rate", c.learning_rate,
             "give a number in (0, 1)")
    _require(c.lr_scheduler in SCHEDULERS, "lr_scheduler", c.lr_scheduler, f"choose one of {', '.join(SCHEDULERS)}")
    _require(_is_number(c.warmup) and c.warmup >= 0 and (c.warmup < 1 or float(c.warmup).is_integer()), "warmup",
             c.warmup, "give a fraction below 1 or a whole number of steps")
    _require(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"choose one of {', '.join(OPTIMIZERS)}")
    for name in ("weight_decay", "max_grad_norm"):
        _require(_is_number(getattr(c, name)) and getattr(c, name) >= 0, name, getattr(c, name),
                 "give a non-negative number")
    _require(c.precision in PRECISIONS, "precision", c.precision, f"choose one of {', '.join(PRECISIONS)}")
    _require(c.compile_layers in SWITCHES, "compile_layers", c.compile_layers, "choose auto, on or off")
    _require(c.device_features in SWITCHES, "device_features", c.device_features, "choose auto, on or off")
    _require(c.per_layer_embeddings in PLACES, "per_layer_embeddings", c.per_layer_embeddings,
             "choose auto, gpu or cpu")
    _require(isinstance(c.report_to, list) and all(isinstance(x, str) for x in c.report_to), "report_to",
             c.report_to, "give a list of logger names (e.g. [tensorboard] or [none])")
    for name in ("system_prompt", "user_prompt", "split", "eval_split"):
        _require(isinstance(getattr(c, name), str) and getattr(c, name) != "", name, getattr(c, name),
                 "give a non-empty string")


def check_runnable(c: TrainConfig) -> None:
    """Checks that need the paths: the corpus and output folder must be given, files must exist."""
    if c.data is None:
        raise ConfigError("no training data: pass --data FILE_OR_FOLDER (or set `data:` in the config file).")
    if c.output_dir is None:
        raise ConfigError("no output folder: pass --output-dir DIR (or set `output_dir:` in the config file).")
    for name in ("data", "eval_data"):
        value = getattr(c, name)
        if value is not None and not Path(value).expanduser().exists():
            raise ConfigError(f"{name}={value!r}: no such file or folder.")
    if c.resume and not any(Path(c.output_dir).glob("checkpoint-*")):
        raise ConfigError(f"--resume: no checkpoint-* folder in {c.output_dir}; start without --resume.")


def _coerce(name: str, value: Any) -> Any:
    """YAML hands back ints where floats are meant (``epochs: 1``); keep the declared types exact."""
    declared = str(FIELDS[name].type)
    if value is None:
        return None
    if declared.startswith("float") and _is_int(value):
        return float(value)
    if declared.startswith("list") and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if declared.startswith("list") and isinstance(value, tuple):
        return list(value)
    return value


def from_dict(values: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
    """A validated config from a mapping; unknown keys are errors that suggest the closest field."""
    unknown = [key for key in values if key not in FIELDS]
    if unknown:
        hints = difflib.get_close_matches(unknown[0], FIELDS, n=1)
        hint = f" (did you mean {hints[0]!r}?)" if hints else ""
        raise ConfigError(f"{source}: unknown field {unknown[0]!r}{hint}. Fields: {', '.join(FIELDS)}.")
    return TrainConfig(**{key: _coerce(key, value) for key, value in values.items()})


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (empty file = no changes)."""
    try:
        import yaml
    except ImportError as error:
        from ..errors import DependencyError

        raise DependencyError("reading training configs needs PyYAML: pip install 'ovoz[train]'.") from error
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: not valid YAML ({error}).") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config {path}: holds a {type(loaded).__name__}; write `field: value` lines.")
    return loaded


def load_recipe(name: str = "seed") -> TrainConfig:
    """A recipe shipped with ovoz (``recipes/<name>.yaml``)."""
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise ConfigError(f"recipe {name!r}: unknown; choose one of {', '.join(choices)}.")
    return from_dict(read_yaml(path), source=str(path))


def resolve_config(config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults (the seed recipe) < ``config_file`` < ``overrides``; validated."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(read_yaml(config_file))
    values.update(overrides or {})
    return from_dict(values, source=str(config_file or "flags"))
