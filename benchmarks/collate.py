"""Issue 6: the host side of a training step: streaming examples (decode + resample) and collating batches.

    python benchmarks/collate.py [--batch 8] [--batches 8]

Runs on the CPU (no model): the corpus is the real clips ($OVOZ_SHARED_CLIPS or ../shared/data/uz_clips)
repeated, streamed through ``ovoz.train.data.build_dataset`` and collated by ``AudioCollator`` (the processor's
log-mel features and tokenization), as ``ovoz train`` does in its training process when
``dataloader_workers`` is 0. Prints ms per example streamed and ms per batch collated, by the processor (log-mel
features on the CPU) and with ``device_features`` (waveforms padded, placeholders counted, tokenized: the
features are then left to the GPU and not timed here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    from ovoz.gemma.processor import load_processor
    from ovoz.gemma.testing import save_model_folder
    from ovoz.train import resolve_config
    from ovoz.train.collator import AudioCollator
    from ovoz.train.data import DataStats, ExampleBuilder, build_dataset

    work = Path(tempfile.mkdtemp(prefix="ovoz-collate-"))
    base = save_model_folder(work / "model", "tiny")  # the processor is the same at every model size
    rows = [json.loads(line) for line in (common.CLIPS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    n = args.batch * (args.batches + 1)
    with (work / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for index in range(n):
            row = rows[index % len(rows)]
            out.write(json.dumps({"audio": str((common.CLIPS / row["path"]).resolve()), "text": row["text"]}) + "\n")
    config = resolve_config(overrides={"base": str(base), "data": str(work / "corpus.jsonl"),
                                       "output_dir": str(work / "out")})
    processor = load_processor(base)
    stream = iter(build_dataset(config, ExampleBuilder(config, processor, DataStats())))
    [next(stream) for _ in range(args.batch)]  # warm-up: opening the stream, first decodes
    started = time.perf_counter()
    examples = [next(stream) for _ in range(args.batch * args.batches)]
    streamed = (time.perf_counter() - started) / len(examples)
    row = {"ms per example streamed": round(1000 * streamed, 1)}
    for name, on_device in (("processor features", False), ("device_features", True)):
        collator = AudioCollator(processor, features_on_device=on_device)
        started = time.perf_counter()
        for index in range(args.batches):
            collator(examples[index * args.batch:(index + 1) * args.batch])
        row[f"ms per batch of {args.batch}, {name}"] = round(1000 * (time.perf_counter() - started) / args.batches, 1)
    seconds = sum(len(example["audio"]) for example in examples) / 16000 / len(examples)
    print(f"# {len(examples)} examples of {seconds:.1f} s on average; {common.machine()}")
    print(common.table([row], list(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
