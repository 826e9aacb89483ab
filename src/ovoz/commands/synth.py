"""``ovoz synth``: a synthetic Uzbek speech corpus (espeak-ng) with train/dev/test JSONL manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _range(text: str) -> tuple[float, float]:
    """``140:200`` -> (140.0, 200.0); one number is a fixed value."""
    low, _, high = text.partition(":")
    return float(low), float(high or low)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip().lstrip("+") for part in text.split(",") if part.strip())


def register(commands: argparse._SubParsersAction) -> None:
    from ..data.synth import SynthOptions

    d = SynthOptions()
    parser = commands.add_parser(
        "synth", help="write a synthetic Uzbek speech corpus with espeak-ng (train/dev/test manifests)",
        description="Read sentences from text files (.txt one a line, .tsv with a text column), write numbers "
        "as words, and speak them with espeak-ng's Uzbek voice in several variants, rates and pitches, with light "
        "noise and reverberation. Writes 16 kHz wavs and train/dev/test.jsonl; splits never share a sentence and "
        "the test split is spoken by held-out voice variants. The same seed gives the same bytes.",
    )
    parser.add_argument("texts", nargs="+", type=Path, help="text files of sentences")
    parser.add_argument("-o", "--output-dir", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--max-sentences", type=int, default=None, help="use the first N sentences only")
    parser.add_argument("--max-chars", type=int, default=d.max_chars,
                        help=f"skip sentences longer than this (default {d.max_chars})")
    parser.add_argument("--copies", type=int, default=d.copies, help="clips per sentence, each with its own voice")
    parser.add_argument("--variants", type=_names, default=d.train_variants, metavar="A,B",
                        help=f"espeak-ng variants of train/dev (default {','.join(d.train_variants)})")
    parser.add_argument("--test-variants", type=_names, default=d.test_variants, metavar="A,B",
                        help=f"held-out variants of the test split (default {','.join(d.test_variants)}; "
                        "'' = the train variants)")
    parser.add_argument("--rate", type=_range, default=d.rate_wpm, metavar="LOW:HIGH",
                        help="speaking rate in words per minute (default %g:%g)" % d.rate_wpm)
    parser.add_argument("--pitch", type=_range, default=d.pitch, metavar="LOW:HIGH",
                        help="espeak-ng pitch 0-99 (default %g:%g)" % d.pitch)
    parser.add_argument("--snr-db", type=_range, default=d.snr_db, metavar="LOW:HIGH",
                        help="noise level as signal-to-noise ratio in dB (default %g:%g)" % d.snr_db)
    parser.add_argument("--reverb", type=float, default=d.reverb_probability,
                        help=f"fraction of clips with reverberation (default {d.reverb_probability})")
    parser.add_argument("--dev-fraction", type=float, default=d.dev_fraction)
    parser.add_argument("--test-fraction", type=float, default=d.test_fraction)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synth import SynthOptions, synthesize

    options = SynthOptions(
        train_variants=args.variants, test_variants=args.test_variants, rate_wpm=args.rate, pitch=args.pitch,
        snr_db=args.snr_db, reverb_probability=args.reverb, dev_fraction=args.dev_fraction,
        test_fraction=args.test_fraction, max_sentences=args.max_sentences, max_chars=args.max_chars,
        copies=args.copies, seed=args.seed, workers=args.workers,
    )
    result = synthesize(args.texts, args.output_dir, options, progress=not getattr(args, "quiet", 0))
    counts = ", ".join(f"{split} {n}" for split, n in result.counts.items())
    print(f"ovoz synth: {counts} clips in {result.output_dir}", file=sys.stderr)
    return 0
