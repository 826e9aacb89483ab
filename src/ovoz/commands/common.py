"""What the subcommands share: exit codes and the model flags of transcribe, eval and serve."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model choices shared by transcribe, eval and serve."""
    from ..types import DEFAULT_ADAPTER, DEFAULT_BASE, ENGINES

    group = parser.add_argument_group("model")
    group.add_argument("--base", default=DEFAULT_BASE, help=f"base model: hub id or local folder (default {DEFAULT_BASE})")
    adapter = group.add_mutually_exclusive_group()
    adapter.add_argument("--adapter", default=DEFAULT_ADAPTER,
                         help=f"LoRA adapter: hub id or local folder (default {DEFAULT_ADAPTER})")
    adapter.add_argument("--no-adapter", action="store_true", help="run the base model alone")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    group.add_argument("--dtype", default=None, choices=["bfloat16", "float32", "float16"],
                       help="weights dtype (default bfloat16)")
    group.add_argument("--4bit", dest="four_bit", action="store_true",
                       help="4-bit base through bitsandbytes (CUDA only)")
    group.add_argument("--local-files-only", action="store_true", help="never contact the hub; use local folders/cache")
    group.add_argument("--engine", choices=list(ENGINES), default="auto",
                       help="decoding engine: ovoz's own (auto: the static CUDA-graph engine on a GPU, plain generate "
                            "on the CPU) or vllm (needs vLLM installed; adapters are merged first; see docs/vllm.md)")
    group.add_argument("--fused-kernels", choices=["auto", "on", "off"], default="auto",
                       help="CUDA: Gemma 4's norms, GELU and decode attention as ovoz's Triton kernels (built in "
                            "about a second, cached on disk); auto: wherever they run (default auto)")


def load_kwargs_from_args(args: argparse.Namespace) -> dict:
    """:func:`ovoz.load`'s arguments from the model flags."""
    return {
        "base": args.base,
        "adapter": None if args.no_adapter else args.adapter,
        "device": args.device,
        "dtype": args.dtype,
        "quantization": "4bit" if args.four_bit else None,
        "local_files_only": args.local_files_only,
        "fused_kernels": fused_kernels_from_args(args),
        "engine": args.engine,
    }


def load_model_from_args(args: argparse.Namespace):
    from ..api import load

    return load(**load_kwargs_from_args(args))


def fused_kernels_from_args(args: argparse.Namespace) -> bool | None:
    return {"auto": None, "on": True, "off": False}[args.fused_kernels]


