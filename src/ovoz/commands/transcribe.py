"""``ovoz transcribe``: files, folders and manifests to txt/json/srt/vtt/tsv."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..types import OUTPUT_FORMATS, SCRIPTS, TranscribeOptions


def register(commands: "argparse._SubParsersAction") -> None:
    from .common import add_model_arguments

    parser = commands.add_parser(
        "transcribe", help="transcribe audio/video files or folders",
        description="Transcribe Uzbek speech. Inputs: audio or video files, folders (searched recursively for "
        "audio/video files) and JSONL manifests (one {\"id\", \"audio\"} object per line; outputs named by id).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio/video file, folder or .jsonl manifest")
    add_model_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("-f", "--output-format", action="append", metavar="FMT",
                     help=f"one or more of {','.join(OUTPUT_FORMATS)} or all (comma-separated or repeated; default txt)")
    out.add_argument("-o", "--output-dir", type=Path, help="write one file per input and format here (default: stdout)")
    out.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs already exist")
    out.add_argument("--stream", action="store_true", help="print text to the terminal as it is generated")
    out.add_argument("--script", choices=SCRIPTS, default="latin", help="output script (default latin)")
    out.add_argument("--max-line-width", type=int, default=42, help="subtitles: characters per line (default 42)")
    out.add_argument("--max-lines", type=int, default=2, help="subtitles: lines per cue (default 2)")
    dec = parser.add_argument_group("decoding")
    defaults = TranscribeOptions()
    dec.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                     help=f"new tokens per chunk at most (default {defaults.max_new_tokens})")
    dec.add_argument("--batch-size", type=int, default=defaults.batch_size,
                     help="chunks decoded together (default: 8 on the CPU, what free GPU memory allows on CUDA)")
    dec.add_argument("--chunk-target", type=float, default=defaults.chunk_target_s,
                     help=f"long audio: preferred chunk length in seconds (default {defaults.chunk_target_s:g}, max 30)")
    dec.add_argument("--no-vad", action="store_true", help="long audio: fixed 30 s windows instead of VAD")
    dec.add_argument("--no-repetition-guard", action="store_true", help="keep runaway repetitions")
    ray = parser.add_argument_group("Ray (a corpus over many GPUs or machines; needs pip install 'ovoz[ray]')")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="transcribe on a Ray cluster: ADDRESS (auto, host:6379, ray://host:10001), else RAY_ADDRESS, "
                          "else a local cluster of this machine. Needs --output-dir; writes an index under "
                          "OUTPUT_DIR/_ovoz_index")
    ray.add_argument("--ray-actors", type=int, metavar="N", help="actors, one model each (default: one per GPU)")
    ray.add_argument("--ray-gpus-per-actor", type=float, metavar="G",
                     help="GPUs per actor (default 1 on a cluster with GPUs, else 0)")
    ray.add_argument("--ray-batch", type=int, default=16, metavar="N",
                     help="inputs handed to an actor at once: the unit of retry and of index shards (default 16)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import runner
    from ..errors import ConfigError
    from ..io import check_output_dir, expand_inputs
    from ..subtitles import SubtitleOptions
    from .common import EXIT_FAILED_INPUTS, EXIT_OK, load_model_from_args

    formats = runner.parse_formats(args.output_format)
    options = TranscribeOptions(
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, chunk_target_s=args.chunk_target,
        vad=not args.no_vad, repetition_guard=not args.no_repetition_guard, script=args.script,
    )
    subtitle_options = SubtitleOptions(max_line_chars=args.max_line_width, max_lines=args.max_lines)
    items = expand_inputs(args.inputs)
    if args.stream and args.output_dir is None and formats != ("txt",):
        raise ConfigError("--stream prints text; with formats other than txt also give --output-dir.")
    if args.ray is not None and (args.output_dir is None or args.stream):
        raise ConfigError("--ray writes files on the cluster: give --output-dir (and no --stream).")
    if args.ray and Path(args.ray).exists():
        raise ConfigError(f"--ray took {args.ray!r} as the cluster's address, but it is a file or folder: put the "
                          "inputs before --ray, or give the address (--ray auto).")
    # Everything that can be checked without the model is checked before it loads: the formats, the inputs
    # (missing files, FIFOs, bad manifest rows are marked unusable), the output folder.
    if args.output_dir is not None:
        check_output_dir(args.output_dir)
    if args.ray is not None:
        return _run_on_ray(args, items, formats, options, subtitle_options)
    # A finished run re-run loads nothing: the model is loaded only when some input is left to do.
    pending = runner.pending_items(items, args.output_dir, formats, args.overwrite)
    model = load_model_from_args(args) if any(item.error is None for item in pending) else None

    def echo(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    summary = runner.run(
        model, items, formats=formats, output_dir=args.output_dir, options=options, overwrite=args.overwrite,
        on_text=echo if args.stream else None, subtitle_options=subtitle_options,
    )
    print(summary.describe(), file=sys.stderr)
    return EXIT_FAILED_INPUTS if summary.failed else EXIT_OK


def _run_on_ray(args: argparse.Namespace, items: list, formats: tuple[str, ...], options: TranscribeOptions,
                subtitle_options) -> int:
    from ..scale.data import RayOptions, transcribe_corpus
    from .common import EXIT_FAILED_INPUTS, EXIT_OK, load_kwargs_from_args

    ray_options = RayOptions(address=args.ray or None, actors=args.ray_actors,
                             gpus_per_actor=args.ray_gpus_per_actor, inputs_per_batch=args.ray_batch)
    summary = transcribe_corpus(items, formats=formats, output_dir=args.output_dir, options=options,
                                load_kwargs=load_kwargs_from_args(args), ray_options=ray_options,
                                overwrite=args.overwrite, subtitle_options=subtitle_options)
    print(summary.describe(), file=sys.stderr)
    return EXIT_FAILED_INPUTS if summary.failed else EXIT_OK
