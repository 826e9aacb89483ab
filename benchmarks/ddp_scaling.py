"""Training on several GPUs: DDP scaling of ``ovoz train`` and the agreement of 1-GPU and 2-GPU adapters.

    python benchmarks/ddp_scaling.py [--gpus 2] [--batch 8] [--steps 30] [--agreement-batch 16]
                                     [--agreement-steps 10] [--parts scaling,agreement] [--work /tmp/ovoz-ddp]
    python benchmarks/ddp_scaling.py --smoke    # tiny model, CPU, 2 gloo processes: checks the code path only

The model is the full-size E4B (text and audio towers) with random bf16 weights, written once as a model folder
under ``--work``; the adapter is the seed LoRA (the recipe's defaults: r=8, alpha=16, language + audio + embedder),
the base is bf16 (``--no-load-in-4bit``; ``--4bit`` loads it in 4-bit). The corpus is the real Uzbek clips
(``$OVOZ_SHARED_CLIPS``), each cut or looped to ``--clip-seconds`` and its transcript cut to 40 tokens, repeated
so that no run reaches its end: every batch has the same shape, as in ``train_step.py``.

* scaling: ``ovoz train`` under ``torchrun --nproc-per-node N`` for N = 1 and N = ``--gpus``, the same per-device
  batch. Each process runs this file as a thin wrapper of the CLI that stamps every optimizer step (after a device
  sync) on rank 0. Samples/s = global batch / median step time over the second half of the steps (compilation and
  warm-up excluded); scaling = samples/s on N GPUs / samples/s on one; efficiency = scaling / N.
* agreement: one process with batch ``--agreement-batch`` against ``--gpus`` processes with an equal share each,
  same data and seed, ``--agreement-steps`` steps, bf16, SGD (its update is linear in the gradient; Adam's
  per-component normalization turns rounding noise in near-zero gradients into whole learning-rate steps).
  Reported: the lora_B weights' difference as a fraction of their norm (lora_B starts at zero, so this is relative
  to what training changed) and the largest elementwise difference. ``agree`` is that fraction under ``--tolerance``
  (2e-2 by default: a chosen bound for bf16 rounding of differently padded batches, not a measured one).

Results go to ``benchmarks/results/ddp_scaling-*.json`` and ``ddp_agreement-*.json`` (``common.write_results``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLOCK_ENV = "OVOZ_DDP_CLOCK"
"""Where the worker's rank 0 writes its step stamps (JSON list of seconds)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=2, help="processes of the multi-GPU runs")
    parser.add_argument("--batch", type=int, default=8, help="per-device batch of the scaling runs")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of each scaling run")
    parser.add_argument("--agreement-batch", type=int, default=16, help="batch of the one-process agreement run")
    parser.add_argument("--agreement-steps", type=int, default=10)
    parser.add_argument("--agreement-lr", type=float, default=0.02, help="SGD learning rate of the agreement runs")
    parser.add_argument("--tolerance", type=float, default=2e-2, help="lora_B difference / lora_B norm allowed")
    parser.add_argument("--parts", default="scaling,agreement", help="comma-separated: scaling, agreement")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--4bit", dest="load_in_4bit", action="store_true", help="4-bit base (QLoRA)")
    parser.add_argument("--compile-layers", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--gradient-checkpointing", default="on", choices=("on", "off"))
    parser.add_argument("--work", type=Path, default=None, help="model folder, corpus and outputs (default: temp)")
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU, gloo, a few steps")
    return parser.parse_args(argv)


def worker(argv: list[str]) -> int:
    """One training process: ``ovoz train`` (the CLI) with a callback that stamps each optimizer step on rank 0."""
    import ovoz.train.trainer as trainer_module
    from ovoz.cli import main as cli_main

    make = trainer_module.make_trainer_class
    stamps: list[float] = []

    def clocked_trainer_class():
        import torch
        from transformers import TrainerCallback

        trainer_class, epoch_limit = make()

        class StepClock(TrainerCallback):
            def on_train_begin(self, *unused, **kwargs):
                stamps.append(time.perf_counter())

            def on_step_end(self, *unused, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                stamps.append(time.perf_counter())

        class Clocked(trainer_class):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.add_callback(StepClock())

        return Clocked, epoch_limit

    trainer_module.make_trainer_class = clocked_trainer_class
    code = cli_main(argv)
    if int(os.environ.get("RANK", "0")) == 0 and os.environ.get(CLOCK_ENV):
        Path(os.environ[CLOCK_ENV]).write_text(json.dumps(stamps), encoding="utf-8")
    return code


def launch(n_processes: int, train_args: list[str], clock: Path | None, smoke: bool) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if smoke:
        env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    if clock is not None:
        env[CLOCK_ENV] = str(clock)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n_processes),
               str(Path(__file__).resolve()), "--worker", *train_args]
    print("$", " ".join(command[2:]), flush=True)
    done = subprocess.run(command, env=env, text=True, capture_output=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        raise SystemExit(f"the {n_processes}-process run failed (exit {done.returncode})")


def train_args(args: argparse.Namespace, base: Path, data: Path, out: Path, batch: int, steps: int,
               *extra: str) -> list[str]:
    return ["train", "--base", str(base), "--data", str(data), "--output-dir", str(out), "--batch-size", str(batch),
            "--max-steps", str(steps), "--save-steps", str(10 * steps), "--logging-steps", "1", "--report-to", "none",
            "--no-progress-bar", "--local-files-only", "--compile-layers", args.compile_layers,
            "--load-in-4bit" if args.load_in_4bit else "--no-load-in-4bit",
            "--gradient-checkpointing" if args.gradient_checkpointing == "on" else "--no-gradient-checkpointing",
            *extra]


def steady_step_s(clock: Path) -> tuple[float, float]:
    """(median step time over the second half of the steps, time of the first step)."""
    stamps = json.loads(clock.read_text(encoding="utf-8"))
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    return statistics.median(steps[len(steps) // 2:]), steps[0]


def scaling(args, base: Path, data: Path, work: Path, common) -> list[dict]:
    rows = []
    for n in sorted({1, args.gpus}):
        out, clock = work / f"scaling-{n}", work / f"clock-{n}.json"
        started = time.perf_counter()
        launch(n, train_args(args, base, data, out, args.batch, args.steps), clock, args.smoke)
        step_s, first_s = steady_step_s(clock)
        rows.append({"processes": n, "per-device batch": args.batch, "global batch": n * args.batch,
                     "steps": args.steps, "steady s/step": round(step_s, 4),
                     "samples/s": round(n * args.batch / step_s, 2), "first step s": round(first_s, 1),
                     "wall s": round(time.perf_counter() - started, 1)})
    single = rows[0]["samples/s"]
    for row in rows:
        row["scaling"] = round(row["samples/s"] / single, 3)
        row["efficiency"] = round(row["scaling"] / row["processes"], 3)
    return rows


def b_difference(a: Path, b: Path) -> tuple[float, float, float]:
    """(lora_B difference / lora_B norm, largest elementwise difference, lora_B norm) of two saved adapters."""
    from safetensors.torch import load_file

    first = {k: v.float() for k, v in load_file(str(a / "adapter_model.safetensors")).items()}
    second = {k: v.float() for k, v in load_file(str(b / "adapter_model.safetensors")).items()}
    if first.keys() != second.keys():
        raise SystemExit(f"{a} and {b} hold different LoRA tensors")
    keys = [k for k in first if "lora_B" in k]
    norm = sum(float((first[k] ** 2).sum()) for k in keys) ** 0.5
    diff = sum(float(((first[k] - second[k]) ** 2).sum()) for k in keys) ** 0.5
    worst = max(float((first[k] - second[k]).abs().max()) for k in first)
    return diff / norm if norm else float("inf"), worst, norm


def agreement(args, base: Path, data: Path, work: Path) -> list[dict]:
    if args.agreement_batch % args.gpus:
        raise SystemExit(f"--agreement-batch {args.agreement_batch} does not split over {args.gpus} processes")
    share = args.agreement_batch // args.gpus
    extra = ["--optimizer", "sgd", "--learning-rate", str(args.agreement_lr), "--warmup", "0",
             "--precision", "fp32" if args.smoke else "bf16"]
    outs = {}
    for n, batch in ((1, args.agreement_batch), (args.gpus, share)):
        outs[n] = work / f"agreement-{n}x{batch}"
        launch(n, train_args(args, base, data, outs[n], batch, args.agreement_steps, *extra), None, args.smoke)
    relative, worst, norm = b_difference(outs[1], outs[args.gpus])
    return [{"runs": f"1 x {args.agreement_batch} vs {args.gpus} x {share}", "steps": args.agreement_steps,
             "precision": "fp32" if args.smoke else "bf16", "optimizer": f"sgd lr {args.agreement_lr:g}",
             "lora_B norm": round(norm, 5), "lora_B diff / norm": f"{relative:.2e}", "max abs diff": f"{worst:.2e}",
             "tolerance": f"{args.tolerance:g}", "agree": "yes" if relative <= args.tolerance else "no"}]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    args = parse_args(argv)
    if args.smoke:
        os.environ["OVOZ_BENCH_SMOKE"] = "1"
        args.steps, args.agreement_steps = min(args.steps, 4), min(args.agreement_steps, 3)
        args.batch, args.agreement_batch, args.clip_seconds = 2, 4, 3.0
        args.compile_layers = "off"
    sys.path.insert(0, str(HERE))
    import common
    import torch
    from train_run import write_corpus

    from ovoz.gemma.testing import save_model_folder

    parts = set(args.parts.split(","))
    if not args.smoke and torch.cuda.device_count() < args.gpus:
        raise SystemExit(f"--gpus {args.gpus}: this machine has {torch.cuda.device_count()} CUDA devices")
    work = args.work or Path(tempfile.mkdtemp(prefix="ovoz-ddp-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / f"model-{common.PRESET}"
    if not (base / "config.json").exists():
        save_model_folder(base, common.PRESET, dtype=torch.bfloat16, device=common.DEVICE)
    repeat = 4 if args.smoke else 1 + (args.steps * args.gpus * args.batch) // 20
    data = write_corpus(work / "corpus.jsonl", common.CLIPS, repeat, args.clip_seconds, 40)
    print(f"# ovoz train under torchrun: {common.PRESET} random weights, seed LoRA, "
          f"{'4-bit' if args.load_in_4bit else 'float32 (CPU)' if args.smoke else 'bf16'} base, {args.clip_seconds:g} s clips, 40-token transcripts, "
          f"gradient_checkpointing {args.gradient_checkpointing}, compile_layers {args.compile_layers}")
    print(f"# {common.machine()}")
    code = 0
    if "scaling" in parts:
        rows = scaling(args, base, data, work, common)
        columns = ["processes", "per-device batch", "global batch", "steps", "steady s/step", "samples/s",
                   "scaling", "efficiency", "first step s", "wall s"]
        print(common.table(rows, columns))
        common.write_results("ddp_scaling-smoke" if args.smoke else "ddp_scaling", rows, columns)
    if "agreement" in parts:
        rows = agreement(args, base, data, work)
        columns = ["runs", "steps", "precision", "optimizer", "lora_B norm", "lora_B diff / norm", "max abs diff",
                   "tolerance", "agree"]
        print(common.table(rows, columns))
        common.write_results("ddp_agreement-smoke" if args.smoke else "ddp_agreement", rows, columns)
        code = 0 if rows[0]["agree"] == "yes" else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
