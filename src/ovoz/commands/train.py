"""``ovoz train``: fine-tune a LoRA adapter with the seed recipe; every config field is also a flag."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

NULLS = ("none", "null", "")


def _parser_for(declared: str) -> Callable[[str], Any]:
    """A string -> value function for a config field's declared type (``int | None``, ``list[str]``, ...)."""
    optional = "None" in declared
    base = declared.replace("| None", "").strip()

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in NULLS:
            return None
        if base.startswith("list"):
            return [part.strip() for part in text.split(",") if part.strip()]
        if base == "int":
            return int(text)
        if base == "float":
            return float(text)
        return text

    parse.__name__ = base  # argparse names the type in its error messages
    return parse


def _metavar(name: str, declared: str) -> str:
    if name in ("base", "adapter", "data", "eval_data", "output_dir"):
        return "PATH"
    if declared.startswith("list"):
        return "A,B"
    return {"int": "N", "float": "X"}.get(declared.replace("| None", "").strip(), "VALUE")


def register(commands: argparse._SubParsersAction) -> None:
    from ..train.config import FIELDS, TrainConfig, field_help

    defaults = TrainConfig()

    parser = commands.add_parser(
        "train", allow_abbrev=False, help="fine-tune a LoRA adapter (the published recipe by default)",
        description="Fine-tune Gemma 4 E4B + LoRA on Uzbek speech. Defaults: the seed recipe "
        "(src/ovoz/train/recipes/seed.yaml). --config FILE and the flags below override any field; "
        "the resolved config is validated before the model loads and saved beside the adapter.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML file of config fields to override")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    groups = {
        "base": parser.add_argument_group("model"), "lora_r": parser.add_argument_group("LoRA"),
        "data": parser.add_argument_group("data"), "system_prompt": parser.add_argument_group("prompt and loss"),
        "epochs": parser.add_argument_group("optimisation"),
        "output_dir": parser.add_argument_group("checkpoints, evaluation, logging"),
    }
    group = parser
    for name, spec in FIELDS.items():
        group = groups.get(name, group)
        flag = "--" + name.replace("_", "-")
        declared = str(spec.type)
        if declared == "bool":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=f"{field_help(name)} (default {getattr(defaults, name)})")
        else:
            default = getattr(defaults, name)
            group.add_argument(flag, dest=name, type=_parser_for(declared), default=argparse.SUPPRESS,
                               metavar=_metavar(name, declared),
                               help=f"{field_help(name)} (default {default})")
    parser.set_defaults(handler=run)


def resolve_from_args(args: argparse.Namespace) -> Any:
    """The config: seed defaults < --config FILE < flags given on the command line."""
    from ..train.config import FIELDS, resolve_config

    overrides = {name: getattr(args, name) for name in FIELDS if hasattr(args, name)}
    return resolve_config(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    from ..train.config import check_runnable

    config = resolve_from_args(args)
    if args.print_config:
        sys.stdout.write(config.to_yaml())
        return 0
    check_runnable(config)  # paths too, before torch is imported
    from ..train import train

    result = train(config)
    print(f"ovoz train: {result.global_step} steps, adapter in {result.output_dir}", file=sys.stderr)
    return 0
