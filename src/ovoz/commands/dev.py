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
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weights dtype (default float32; bfloat16 halves the memory e4b needs)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    parser.set_defaults(handler=run)


MEMORY_MARGIN = 1.15
"""Building and saving a random model needs its weights' size and some room besides."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(preset: str, dtype: str, needed: int, available: int | None) -> None:
    """Refuse, with the numbers and the way out, a model that cannot fit (rather than be killed halfway)."""
    from ..errors import ConfigError

    needed = int(needed * MEMORY_MARGIN)
    if available is None or needed <= available:
        return
    way_out = (f"pass --dtype bfloat16 (about {needed / 2 / 1e9:.1f} GB) or " if dtype == "float32" else "")
    raise ConfigError(f"make-test-model --preset {preset} --dtype {dtype}: needs about {needed / 1e9:.1f} GB of "
                      f"memory, {available / 1e9:.1f} GB are available; {way_out}use a machine with more memory.")


def check_folder(folder: Path, overwrite: bool, flag: str = "make-test-model") -> None:
    from ..errors import ConfigError

    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder}: is a file; give a folder (it is created when missing).")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ConfigError(f"{flag} {folder}: exists and is not empty; pass --overwrite or another folder.")


def run(args: argparse.Namespace) -> int:
    import logging

    import torch

    from ..gemma.testing import save_adapter, save_model_folder, weight_bytes

    check_folder(args.folder, args.overwrite)
    if args.adapter:
        check_folder(args.adapter, args.overwrite, "--adapter")
    dtype = getattr(torch, args.dtype)
    check_memory(args.preset, args.dtype, weight_bytes(args.preset, dtype), available_memory())
    log = logging.getLogger("ovoz")
    folder = save_model_folder(args.folder, args.preset, seed=args.seed, dtype=dtype)
    log.info("model folder: %s", folder)
    if args.adapter:
        save_adapter(folder, args.adapter, style=args.adapter_style, seed=args.seed + 1)
        log.info("adapter folder: %s", args.adapter)
    return 0
