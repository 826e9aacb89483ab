"""``ovoz merge``: fold a LoRA adapter into the base and write a merged bf16 model folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    from ..types import DEFAULT_ADAPTER, DEFAULT_BASE

    parser = commands.add_parser(
        "merge", help="merge a LoRA adapter into the base (for engines that take no adapters, e.g. vLLM)",
        description="Load base + adapter, fold the LoRA weights into the base and save a plain model folder "
        "(weights, config, tokenizer, feature extractor).",
    )
    parser.add_argument("--base", default=None,
                        help="full-precision base model: hub id or folder (default: the base the adapter records in "
                        f"its adapter_config.json, the full-precision one for a 4-bit base; else {DEFAULT_BASE})")
    parser.add_argument("--adapter", default=DEFAULT_ADAPTER,
                        help=f"LoRA adapter: hub id or folder (default {DEFAULT_ADAPTER})")
    parser.add_argument("-o", "--output-dir", type=Path, required=True, help="where to write the merged model")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"],
                        help="weights dtype of the merged model (default bfloat16)")
    parser.add_argument("--device", default="cpu", help="where to merge: cpu (default) or cuda")
    parser.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..gemma.merge import merge_adapter

    folder = merge_adapter(args.adapter, args.output_dir, base=args.base, dtype=args.dtype, device=args.device,
                           local_files_only=args.local_files_only, overwrite=args.overwrite)
    print(f"ovoz merge: merged model written to {folder}", file=sys.stderr)
    return 0
