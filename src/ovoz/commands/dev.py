"""``ovoz make-test-model``: a random-weight Gemma 4 audio model folder (and adapter), for trying ovoz offline."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: "argparse._SubParsersAction") -> None:
    parser = commands.add_parser(
        "make-test-model", help="write a random-weight Gemma 4 model folder (tests, benchmarks, offline demo)",
        description="Write a Gemma 4 audio model folder with random weights. Its transcripts are noise; it "
        "exercises every code path without downloading anything.",
    )
    parser.add_argument("folder", type=Path, help="where to write the model folder")
    parser.add_argument("--preset", choices=["tiny", "e4b"], default="tiny", help="tiny (default) or full-size e4b")
    parser.add_argument("--adapter", type=Path, help="also write a random LoRA adapter folder here")
    parser.add_argument("--adapter-style", choices=["peft", "unsloth"], default="unsloth",
                        help="adapter_config.json as PEFT or as Unsloth saves it (default unsloth, like the seed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..gemma.testing import save_adapter, save_model_folder

    log = logging.getLogger("ovoz")
    folder = save_model_folder(args.folder, args.preset, seed=args.seed)
    log.info("model folder: %s", folder)
    if args.adapter:
        save_adapter(folder, args.adapter, style=args.adapter_style, seed=args.seed + 1)
        log.info("adapter folder: %s", args.adapter)
    return 0
