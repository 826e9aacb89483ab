"""``ovoz eval``: score one or more models on a corpus and write a report folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..types import TranscribeOptions


def register(commands: argparse._SubParsersAction) -> None:
    from ..data import FORMATS
    from ..eval import DEFAULT_NORMALIZERS, DEFAULT_PRIMARY
    from .common import add_model_arguments

    parser = commands.add_parser(
        "eval",
        help="word/character error rates of one or more models on a corpus, with a report",
        description="Transcribe a corpus with the base model, the base + adapter, or several adapters on one "
        "base, and write a report folder (summary.json, per-utterance TSV sorted by errors, word confusions, "
        "WER by duration, report.html). Hypotheses are cached in the folder: a re-run resumes.",
        epilog="Example: ovoz eval cv-corpus/uz --split test --compare base --compare mine=./my_adapter -o report/",
    )
    parser.add_argument(
        "dataset",
        help="JSONL manifest, Common Voice or FLEURS folder/TSV, or a local "
        "Hugging Face dataset (save_to_disk folder or parquet)",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--split", default="test", help="split to read where the layout has several (default test)")
    data.add_argument("--text-column", help="transcript field/column (default: the format's own)")
    data.add_argument("--limit", type=int, help="evaluate the first N utterances only")
    data.add_argument("--format", choices=FORMATS, help="skip layout detection")
    data.add_argument(
        "--on-error",
        choices=["skip", "raise"],
        default="skip",
        help="bad rows: skip them (listed in the report; default) or stop",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="[NAME=]ADAPTER",
        help="also evaluate this adapter on the same base, loaded once (repeatable); 'base' means the base alone",
    )
    out = parser.add_argument_group("report")
    out.add_argument("-o", "--output-dir", type=Path, help="report folder (default eval-<dataset name>)")
    out.add_argument(
        "--normalizer",
        action="append",
        metavar="NAME",
        help=f"normalizations to score under (repeat or comma-separate; default {','.join(DEFAULT_NORMALIZERS)})",
    )
    out.add_argument(
        "--sort-by",
        default=DEFAULT_PRIMARY,
        metavar="NAME",
        help=f"normalization the per-utterance table and plots use (default {DEFAULT_PRIMARY})",
    )
    out.add_argument("--n-confusions", type=int, default=20, help="word confusions listed (default 20)")
    out.add_argument("--no-cache", action="store_true", help="discard cached hypotheses and decode everything")
    out.add_argument("--no-progress", action="store_true", help="no progress bar or progress log lines")
    dec = parser.add_argument_group("decoding")
    defaults = TranscribeOptions()
    dec.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.max_new_tokens,
        help=f"new tokens per utterance at most (default {defaults.max_new_tokens})",
    )
    dec.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="utterances decoded together (default: 8 on the CPU, what free GPU memory allows on CUDA)",
    )
    dec.add_argument("--no-repetition-guard", action="store_true", help="keep runaway repetitions")
    parser.set_defaults(handler=run)


def model_specs(args: argparse.Namespace) -> list:
    """The models to evaluate: the --adapter (or the base with --no-adapter), then each --compare."""
    from ..demo import is_demo
    from ..eval import BASE_NAME, ModelSpec, unique_names
    from ..types import DEFAULT_ADAPTER

    # --base demo: the published adapter is for E4B, so the default is the demo model alone
    alone = args.no_adapter or (is_demo(args.base) and str(args.adapter) == DEFAULT_ADAPTER)
    first = ModelSpec(BASE_NAME) if alone else ModelSpec.parse(str(args.adapter))
    return unique_names([first, *(ModelSpec.parse(text) for text in args.compare)])


def _default_output(dataset: str) -> Path:
    path = Path(dataset).expanduser()
    name = path.stem if path.is_file() else path.name
    return Path(f"eval-{name or 'dataset'}")


def run(args: argparse.Namespace) -> int:
    import logging

    from ..api import load
    from ..errors import ConfigError
    from ..eval import evaluate, read_corpus
    from ..eval.report import headline_table
    from ..gemma.adapter import inspect_adapter
    from ..gemma.hub import resolve_folder
    from ..io import check_output_dir
    from .common import EXIT_FAILED_INPUTS, EXIT_OK, fused_kernels_from_args

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: give a positive number of utterances.")
    normalizers = [n.strip() for value in (args.normalizer or []) for n in value.split(",") if n.strip()]
    options = TranscribeOptions(
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, repetition_guard=not args.no_repetition_guard
    )
    specs = model_specs(args)
    utterances, dataset = read_corpus(
        args.dataset,
        args.split,
        text_column=args.text_column,
        limit=args.limit,
        format=args.format,
        on_error=args.on_error,
    )
    output_dir = check_output_dir(args.output_dir or _default_output(args.dataset))  # before the model loads
    logging.getLogger("ovoz").info(
        "%d utterances; models: %s; report folder %s", len(utterances), ", ".join(s.name for s in specs), output_dir
    )
    for spec in specs:  # a missing or corrupt adapter fails now, not after the first model's whole evaluation
        if spec.adapter is not None:
            inspect_adapter(resolve_folder(spec.adapter, kind="adapter", local_files_only=args.local_files_only))
    base = load(
        args.base,
        adapter=None,
        device=args.device,
        dtype=args.dtype,
        quantization="4bit" if args.four_bit else None,
        local_files_only=args.local_files_only,
        merge_adapter=False,
        fused_kernels=fused_kernels_from_args(args),
        engine=args.engine,
    )
    extra = {"normalizers": normalizers} if normalizers else {}
    result = evaluate(
        base,
        specs,
        utterances,
        output_dir,
        options=options,
        primary=args.sort_by,
        n_confusions=args.n_confusions,
        dataset=dataset,
        progress=not args.no_progress,
        merge_last=True,
        local_files_only=args.local_files_only,
        use_cache=not args.no_cache,
        **extra,
    )
    print(headline_table(result))
    return EXIT_FAILED_INPUTS if any(model.failed for model in result.models) else EXIT_OK
