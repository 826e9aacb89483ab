"""The ``ovoz`` command: argument parsing and exit codes only; the work lives in the library."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from . import __version__
from .errors import ConfigError, ModelLoadError, OvozError, cli_names

logger = logging.getLogger("ovoz")

from .commands.common import EXIT_FAILED_INPUTS, EXIT_MODEL, EXIT_OK, EXIT_USAGE  # noqa: F401 (re-exported)


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
        with cli_names():  # error messages name the flags to change
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
