"""The ``ovoz`` command: argument parsing and exit codes only; the work lives in the library."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from . import __version__
from .errors import ConfigError, ModelLoadError, OvozError

logger = logging.getLogger("ovoz")

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE, EXIT_MODEL = 0, 1, 2, 3


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model choices shared by transcribe, eval and serve."""
    from .gemma.loading import DEFAULT_ADAPTER, DEFAULT_BASE

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
    group.add_argument("--fused-kernels", choices=["auto", "on", "off"], default="auto",
                       help="CUDA: Gemma 4's norms, rotary embedding and GELU as compiled kernels, about a third "
                            "faster after a one-time compilation of 10-25 s per process; auto: for runs of 3 h of "
                            "audio or more (default auto)")


def load_model_from_args(args: argparse.Namespace):
    from .gemma.loading import load

    return load(
        base=args.base,
        adapter=None if args.no_adapter else args.adapter,
        device=args.device,
        dtype=args.dtype,
        quantization="4bit" if args.four_bit else None,
        local_files_only=args.local_files_only,
        fused_kernels=fused_kernels_from_args(args),
    )


def fused_kernels_from_args(args: argparse.Namespace) -> bool | None:
    return {"auto": None, "on": True, "off": False}[args.fused_kernels]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovoz", description="Uzbek speech-to-text on Gemma 4 + LoRA.")
    parser.add_argument("--version", action="version", version=f"ovoz {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .commands import register_all

    register_all(commands)
    return parser


def setup_logging(level: int) -> None:
    levels = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
    logging.basicConfig(
        level=levels[max(-2, min(1, level))], format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if level < 1:  # transformers and friends are chatty; keep their warnings only
        import warnings

        # Deprecation notices addressed to library authors (e.g. peft calling is_gradient_checkpointing).
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)(\.|$)")
        for name in ("transformers", "peft", "huggingface_hub", "accelerate", "httpx"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            import transformers

            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
        except ImportError:
            pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose - args.quiet)
    try:
        return int(args.handler(args) or EXIT_OK)
    except ModelLoadError as error:
        print(f"ovoz: error: {error}", file=sys.stderr)
        return EXIT_MODEL
    except (ConfigError, OvozError) as error:
        print(f"ovoz: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ovoz: interrupted; finished outputs are complete, the rest were not written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
