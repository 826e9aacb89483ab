"""Issue 6: ``ovoz train`` end to end on a model folder, per backend: data, collator, loss, optimizer, checkpoints.

    python benchmarks/train_run.py --base FOLDER [--backends transformers,unsloth] [--steps 20] [--repeat 40]
                                   [--batch 8] [--no-4bit] [--compile-layers auto|on|off]
    python benchmarks/train_run.py --smoke      # tiny model on the CPU, 2 steps: checks the code path only

The corpus is the real Uzbek clips (``$OVOZ_SHARED_CLIPS`` or ../shared/data/uz_clips), repeated ``--repeat``
times, so batches mix clip lengths as a real corpus does. Each backend trains ``--steps`` optimizer steps through
:func:`ovoz.train.train` with the seed recipe otherwise, then the saved adapter is checked: which parts it adapts
(language tower, audio tower, audio embedder) and that stock PEFT loads it onto the base.

Prints, per backend: steady step time (median of the second half of the steps, so compilation is excluded),
samples/s, the time of the first step, peak GPU memory, the first and last logged loss, and the adapter's parts.
A second table splits the steady step (medians, with a device sync at each of the trainer's callbacks): fetching
and collating the batch plus logging and saving (between one step's end and the next one's start), forward +
backward + gradient clipping, and the optimizer step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, help="model folder (default: a tiny random one is written)")
    parser.add_argument("--backends", default="transformers", help="comma-separated: transformers, unsloth")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=40, help="copies of the clip list in the corpus")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--no-4bit", dest="load_in_4bit", action="store_false")
    parser.add_argument("--compile-layers", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--logging-steps", type=int, default=10, help="log (and read back) the loss every N steps")
    parser.add_argument("--per-layer-embeddings", default="auto", choices=("auto", "gpu", "cpu"))
    parser.add_argument("--device-features", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--dataloader-workers", type=int, default=0)
    parser.add_argument("--gradient-checkpointing", default="on", choices=("on", "off"))
    parser.add_argument("--clip-seconds", type=float, default=None,
                        help="every clip cut or looped to this length (as train_step.py's batches), not the real "
                             "clips' own lengths")
    parser.add_argument("--text-tokens", type=int, default=None,
                        help="transcripts cut to this many characters: tokens of the test folders' byte-level "
                             "tokenizer (train_step.py uses 40). Whole transcripts give 48-257 such tokens, far "
                             "more than a real subword tokenizer gives for the same text")
    parser.add_argument("--profile", action="store_true",
                        help="profile the last step but one: top ops by time (slow: a full-size checkpointed "
                             "step took minutes)")
    parser.add_argument("--skip-load-check", action="store_true",
                        help="do not load the adapter with stock PEFT afterwards (slow for a full-size base)")
    parser.add_argument("--work", type=Path, default=None, help="folder for corpus and outputs (default: temp)")
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU, 2 steps")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        os.environ["OVOZ_BENCH_SMOKE"] = "1"
        args.steps, args.repeat, args.batch = min(args.steps, 2), min(args.repeat, 2), min(args.batch, 2)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    work = args.work or Path(tempfile.mkdtemp(prefix="ovoz-train-run-"))
    work.mkdir(parents=True, exist_ok=True)
    base = args.base
    if base is None:
        from ovoz.gemma.testing import save_model_folder

        base = work / "tiny-model"
        if not (base / "config.json").exists():
            save_model_folder(base, "tiny")
    manifest = write_corpus(work / "corpus.jsonl", common.CLIPS, args.repeat, args.clip_seconds,
                            args.text_tokens)
    rows = []
    for backend in args.backends.split(","):
        rows.append(run_backend(backend, base, manifest, work / f"out-{backend}", args, common))
    print(f"# ovoz train: base {base}, {args.steps} steps of batch {args.batch}, corpus {manifest} "
          f"({args.repeat} x the clips in {common.CLIPS}), 4-bit {'on' if args.load_in_4bit else 'off'}, "
          f"compile_layers {args.compile_layers}, per_layer_embeddings {args.per_layer_embeddings}, "
          f"device_features {args.device_features}, dataloader_workers {args.dataloader_workers}, "
          f"gradient_checkpointing {args.gradient_checkpointing}, "
          f"clips {'real lengths' if args.clip_seconds is None else f'{args.clip_seconds:g} s'}, "
          f"transcripts {'whole' if args.text_tokens is None else f'cut to {args.text_tokens} tokens'}")
    print(f"# {common.machine()}")
    print(common.table(rows, ["backend", "steady s/step", "samples/s", "first step s", "peak GiB", "loss first",
                              "loss last", "adapter parts", "stock PEFT loads"]))
    print(common.table(rows, ["backend", "data+log s", "fwd+bwd+clip s", "optimizer s"]))
    return 0 if all(row["stock PEFT loads"] in ("yes", "not checked") for row in rows) else 1


def write_corpus(path: Path, clips: Path, repeat: int, seconds: float | None = None,
                 chars: int | None = None) -> Path:
    """``repeat`` copies of the clips' manifest; with ``seconds``, each clip is first cut or looped to that length;
    with ``chars``, each transcript is cut to that many characters."""
    rows = [json.loads(line) for line in (clips / "manifest.jsonl").read_text().splitlines() if line.strip()]
    audio = [str((clips / row["path"]).resolve()) for row in rows]
    if seconds is not None:
        import common
        import soundfile

        import ovoz

        folder = path.parent / f"clips-{seconds:g}s"
        folder.mkdir(exist_ok=True)
        for i, row in enumerate(rows):
            audio[i] = str(folder / f"{i:03d}.wav")
            soundfile.write(audio[i], common.clip_of(seconds, [ovoz.load_audio(clips / row["path"])]), 16000)
    with path.open("w", encoding="utf-8") as out:
        for _ in range(repeat):
            for file, row in zip(audio, rows):
                out.write(json.dumps({"audio": file, "text": row["text"][:chars]}, ensure_ascii=False) + "\n")
    return path


def run_backend(backend: str, base: Path, manifest: Path, output: Path, args: argparse.Namespace, common) -> dict:
    import ovoz.train.trainer as trainer_module
    from ovoz.train import resolve_config, train

    stamps: dict[str, list[float]] = {"begin": [], "pre_optimizer": [], "optimizer": [], "end": []}
    make = trainer_module.make_trainer_class

    def stamp(name: str) -> None:
        common.sync()
        stamps[name].append(time.perf_counter())

    def timed_trainer_class():  # the trainer with a callback that stamps every phase of every optimizer step
        from transformers import TrainerCallback

        trainer_class, epoch_limit = make()

        class StepClock(TrainerCallback):
            def on_step_begin(self, *unused, **kwargs):
                stamp("begin")

            def on_pre_optimizer_step(self, *unused, **kwargs):
                stamp("pre_optimizer")

            def on_optimizer_step(self, *unused, **kwargs):
                stamp("optimizer")

            def on_step_end(self, *unused, **kwargs):
                stamp("end")

        class Profiled(StepClock):  # profiles the last step but one (the last one saves the adapter)
            profiler = None

            def on_step_begin(self, args_, state, *unused, **kwargs):
                super().on_step_begin()
                if state.global_step == args.steps - 2:
                    from torch.profiler import ProfilerActivity, profile

                    self.profiler = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
                    self.profiler.__enter__()

            def on_step_end(self, *unused, **kwargs):
                super().on_step_end()
                if self.profiler is not None:
                    self.profiler.__exit__(None, None, None)
                    common.print_profile(self.profiler, f"ovoz train ({backend})")
                    self.profiler = None

        class Timed(trainer_class):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.add_callback(Profiled() if args.profile and args.steps > 2 else StepClock())

        return Timed, epoch_limit

    trainer_module.make_trainer_class = timed_trainer_class
    config = resolve_config(overrides={
        "base": str(base), "data": str(manifest), "output_dir": str(output), "max_steps": args.steps,
        "backend": backend, "load_in_4bit": args.load_in_4bit, "compile_layers": args.compile_layers,
        "per_layer_embeddings": args.per_layer_embeddings, "device_features": args.device_features,
        "dataloader_workers": args.dataloader_workers,
        "gradient_checkpointing": args.gradient_checkpointing == "on", "batch_size": args.batch, "report_to": ["none"],
        "save_steps": max(1, args.steps // 2), "logging_steps": args.logging_steps, "local_files_only": True,
        "progress_bar": False, "device": common.DEVICE,
    })
    common.reset_peak()
    started = time.perf_counter()
    try:
        result = train(config)
    finally:
        trainer_module.make_trainer_class = make
    ends = stamps["end"]
    steps = [b - a for a, b in zip([started, *ends], ends)]
    half = len(steps) // 2
    steady = statistics.median(steps[half:]) if len(steps) > 1 else float("nan")

    def phase(start: str, stop: str, offset: int = 0) -> float | str:
        spans = [b - a for a, b in zip(stamps[start], stamps[stop][offset:])][max(0, half - offset):]
        return round(statistics.median(spans), 3) if spans else ""

    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    return {"backend": backend, "steady s/step": round(steady, 3), "samples/s": round(args.batch / steady, 2),
            "data+log s": phase("end", "begin", offset=1), "fwd+bwd+clip s": phase("begin", "pre_optimizer"),
            "optimizer s": phase("pre_optimizer", "optimizer"),
            "first step s": round(steps[0], 1) if steps else "", "peak GiB": common.peak_gib(),
            "loss first": round(losses[0], 3) if losses else "", "loss last": round(losses[-1], 3) if losses else "",
            "adapter parts": adapter_parts(output),
            "stock PEFT loads": "not checked" if args.skip_load_check else stock_peft_loads(base, output)}


def adapter_parts(folder: Path) -> str:
    from ovoz.gemma.adapter import inspect_adapter

    return inspect_adapter(folder).summary()


def stock_peft_loads(base: Path, adapter: Path) -> str:
    """Stock PEFT (no ovoz code) attaches the saved adapter to the base and every LoRA weight lands somewhere."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import Gemma4ForConditionalGeneration

    try:
        model = Gemma4ForConditionalGeneration.from_pretrained(base, dtype=torch.bfloat16, device_map="cpu")
        model = PeftModel.from_pretrained(model, str(adapter))
        saved = load_file(str(adapter / "adapter_model.safetensors"))
        loaded = {name for name, _ in model.named_parameters() if "lora_" in name}
        return "yes" if len(loaded) == len(saved) else f"no ({len(loaded)} of {len(saved)} LoRA tensors)"
    except Exception as error:  # the benchmark reports it rather than stopping
        return f"no ({type(error).__name__}: {str(error)[:80]})"


if __name__ == "__main__":
    sys.exit(main())
