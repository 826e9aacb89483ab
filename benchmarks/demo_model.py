"""Train the demo model end to end: corpus, random-init model, full training, LoRA on a shifted domain, checks.

Every step goes through ovoz's own commands (``ovoz synth``, ``ovoz train``, ``ovoz eval``); this script only
chains them, times them and writes the results. On the GPU box (docs/demo.md gives the exact call):

    python3 benchmarks/demo_model.py --out OUT --work /tmp/demo --train-seconds 170

and on a CPU, to check every step at micro scale in a few minutes (measures nothing):

    python3 benchmarks/demo_model.py --smoke --out /tmp/demo-out --work /tmp/demo-work

Steps:
 1. ``ovoz synth`` the base corpus (train voices m1 m2 m3 m5 m6 f1 f2 f3 f5; test voices m4 f4 held out) and, in
    the background, the shifted corpus (voice variant klatt4, 250-270 words a minute, SNR 8-12 dB: none of them
    in the base corpus) from the same sentence lists.
 2. ``ovoz.demo.build.save_demo_folder``: tokenizer trained on the train split's text, random-init model.
 3. ``ovoz train --train-mode full``, a short calibration run first to turn the time budget into max_steps (so
    the cosine schedule ends when the time does), ``max_time_s`` as a safety net; the result is saved in bf16.
 4. ``ovoz eval`` of the model on the base corpus's test split (held-out sentences, held-out voices).
 5. ``ovoz eval`` of the model on the shifted test split, ``ovoz train`` of a LoRA adapter with the published
    recipe's settings on the shifted train split, ``ovoz eval --compare`` of both.
 6. Consistency on the held-out test clips: the static engine vs plain ``generate`` (CUDA), log-mel features on
    the GPU vs the processor's on the CPU, batched vs batch 1, CPU ``generate``; 4-bit if bitsandbytes is there.
Writes to --out: demo_model.tar (model folder, bf16), demo_adapter.tar, demo_results.json, demo_log.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXTS_DIR = next((folder / "shared" / "data" / "text" for folder in (ROOT, ROOT.parent, ROOT.parent.parent)
                  if (folder / "shared" / "data" / "text").is_dir()), ROOT / "shared" / "data" / "text")
"""The sentence lists: ../shared/data/text beside the checkout (or shared/ inside it), or --texts-dir."""
TEXTS = ("cv_uz_sentences.txt", "usc_dev_test_transcripts.tsv")
SHIFT = dict(variants="klatt4", rate="250:270", snr="8:12")
"""The shifted domain of the LoRA step: a voice variant, a speed and a noise level the base corpus never has."""

LOG: list[str] = []


def log(message: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {message}"
    LOG.append(line)
    print(line, flush=True)


def ovoz(*args: str, env: dict | None = None, background: bool = False):
    command = [sys.executable, "-m", "ovoz.cli", *args]
    log("$ ovoz " + " ".join(args))
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    LOG.extend(tail)
    if done.returncode not in (0, 1):
        print("\n".join(tail), flush=True)
        raise SystemExit(f"ovoz {args[0]} failed ({done.returncode})")
    log(f"  ({time.perf_counter() - started:.1f} s)")
    return done


def espeak_from_debs(debs: Path, work: Path) -> None:
    """Unpack Debian's espeak-ng packages into ``work/espeak`` and point ovoz synth at them (not into /)."""
    root = work / "espeak"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    libs = ":".join(str(p) for p in (root / "usr/lib/x86_64-linux-gnu", root / "lib/x86_64-linux-gnu",
                                     root / "usr/lib/x86_64-linux-gnu/pulseaudio"))
    wrapper = work / "espeak-ng"
    wrapper.write_text(f"#!/bin/sh\nLD_LIBRARY_PATH={libs} ESPEAK_DATA_PATH={root}/usr/lib/x86_64-linux-gnu/"
                       f"espeak-ng-data exec {root}/usr/bin/espeak-ng \"$@\"\n")
    wrapper.chmod(0o755)
    os.environ["OVOZ_ESPEAK"] = str(wrapper)
    probe = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True)
    log(f"espeak-ng from {debs}: {probe.stdout.strip() or probe.stderr.strip()}")


def save(results: dict, out: Path) -> None:
    """Write what is measured so far (a run stopped at its time limit still returns its figures)."""
    (out / "demo_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (out / "demo_log.txt").write_text("\n".join(LOG) + "\n")


def cer_of(report: Path, model: str | None = None) -> dict:
    summary = json.loads((report / "summary.json").read_text())
    rows = {}
    for entry in summary["models"]:
        scores = entry["scores"]["normalized"]
        rows[entry["name"]] = {"wer": scores["wer"], "cer": scores["cer"], "n": scores.get("n_scored"),
                               "rtfx": entry.get("rtfx")}
    return rows if model is None else rows[model]


def to_bf16(source: Path, target: Path) -> None:
    import torch
    from transformers import Gemma4ForConditionalGeneration

    model = Gemma4ForConditionalGeneration.from_pretrained(source, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json",
                 "generation_config.json", "README.md", "ovoz_train.yaml", "trainer_state.json"):
        if (source / name).exists():
            shutil.copy(source / name, target / name)


def tar(folder: Path, path: Path, skip: tuple[str, ...] = ("checkpoint-", "runs", "training_args.bin")) -> None:
    with tarfile.open(path, "w") as archive:
        for item in sorted(folder.iterdir()):
            if not item.name.startswith(skip) and item.is_file():
                archive.add(item, arcname=item.name)


def curve(folder: Path) -> list[dict]:
    state = json.loads((folder / "trainer_state.json").read_text())
    return [{k: v for k, v in row.items() if k in ("step", "loss", "learning_rate", "eval_cer", "eval_wer")}
            for row in state["log_history"] if "loss" in row or "eval_cer" in row]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ovoz-demo"))
    parser.add_argument("--texts-dir", type=Path, default=TEXTS_DIR, help=f"folder of {' and '.join(TEXTS)}")
    parser.add_argument("--debs", type=Path, help="folder of espeak-ng .debs to unpack (else espeak-ng on PATH)")
    parser.add_argument("--train-seconds", type=float, default=170.0, help="wall-clock budget of the full training")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1.5e-3)
    parser.add_argument("--max-sentences", type=int, default=None)
    parser.add_argument("--shift-sentences", type=int, default=3000)
    parser.add_argument("--steps", type=int, help="max_steps of the full training; skips the calibration run "
                        "(then --train-seconds is max_time_s alone)")
    parser.add_argument("--evals", type=int, default=6, help="dev evaluations during the full training")
    parser.add_argument("--consistency-clips", type=int, default=128)
    parser.add_argument("--continue-from", type=Path, help="a demo_model.tar to train further instead of random init")
    parser.add_argument("--smoke", action="store_true", help="micro scale on the CPU (checks the code path)")
    args = parser.parse_args()
    started = time.perf_counter()
    work, out = args.work, args.out
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.max_sentences = args.max_sentences or 120
        args.shift_sentences = min(args.shift_sentences, 60)
        args.train_seconds = min(args.train_seconds, 20)
        args.batch_size = min(args.batch_size, 8)
    if args.debs:
        espeak_from_debs(args.debs, work)
    import torch

    cuda = torch.cuda.is_available() and not args.smoke
    device = "cuda" if cuda else "cpu"
    texts = [str(args.texts_dir / name) for name in TEXTS]
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": platform.node(), "python": platform.python_version(),
                     "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if cuda else None,
                     "smoke": args.smoke, "shift": SHIFT}
    import transformers

    results["transformers"] = transformers.__version__

    # 1. corpora
    corpus, shifted = work / "corpus", work / "shifted"
    limit = ["--max-sentences", str(args.max_sentences)] if args.max_sentences else []
    if not (corpus / "synth.json").exists():
        ovoz("-q", "synth", *texts, "-o", str(corpus), "--max-chars", "100", "--seed", "0", *limit)
    shift_job = None
    if not (shifted / "synth.json").exists():
        shift_job = ovoz("-q", "synth", *texts, "-o", str(shifted), "--max-chars", "100", "--seed", "1",
                         "--variants", SHIFT["variants"], "--test-variants", "", "--rate", SHIFT["rate"],
                         "--snr-db", SHIFT["snr"], "--reverb", "0", "--max-sentences", str(args.shift_sentences),
                         "--workers", "4", background=True)
    results["corpus"] = json.loads((corpus / "synth.json").read_text())["counts"]
    log(f"corpus: {results['corpus']}  ({time.perf_counter() - started:.0f} s)")

    # 2. the random-init model
    init = work / "init"
    if args.continue_from:
        init.mkdir(exist_ok=True)
        with tarfile.open(args.continue_from) as archive:
            archive.extractall(init)
        results["continued_from"] = args.continue_from.name
    elif not (init / "model.safetensors").exists():
        from ovoz.data.synth import read_sentences
        from ovoz.demo.build import save_demo_folder

        save_demo_folder(init, read_sentences(texts))

    # 3. full training: calibrate the step rate, then one run whose schedule fits the budget
    common = ["--base", str(init), "--train-mode", "full", "--no-load-in-4bit", "--backend", "transformers",
              "--data", str(corpus / "train.jsonl"), "--normalize-text", "normalized",
              "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
              "--optimizer", "adamw_torch_fused" if cuda else "adamw_torch", "--weight-decay", "0.01",
              "--no-gradient-checkpointing", "--compile-layers", "off", "--report-to", "none", "--no-progress-bar",
              "--shuffle-buffer", "2000", "--dataloader-workers", "1" if cuda else "0", "--max-clip-s", "20",
              "--device", device, "--eval-batch-size", "64", "--eval-max-new-tokens", "64"]
    rate = None
    if args.steps:
        steps = args.steps
    else:
        calib = work / "calib"
        t0 = time.perf_counter()
        ovoz("train", *common, "--output-dir", str(calib), "--max-steps", "30", "--logging-steps", "30",
             "--save-steps", "100000", "--lr-scheduler", "constant")
        runtime = json.loads((calib / "trainer_state.json").read_text())["log_history"][-1].get("train_runtime")
        rate = 30 / runtime if runtime else 1.0
        steps = max(20, int(rate * args.train_seconds * 0.95))
        log(f"calibration: {rate:.2f} steps/s ({time.perf_counter() - t0:.0f} s with start-up) -> {steps} steps")
    base_run = work / "base-run"
    eval_every = max(10, steps // args.evals)
    t0 = time.perf_counter()
    ovoz("train", *common, "--output-dir", str(base_run), "--max-steps", str(steps), "--max-time-s",
         str(args.train_seconds * (1.0 if args.steps else 1.1)), "--warmup", "0.05", "--lr-scheduler", "cosine",
         "--logging-steps",
         str(max(1, steps // 40)), "--eval-data", str(corpus / "dev.jsonl"), "--eval-steps", str(eval_every),
         "--eval-limit", "128", "--save-steps", "100000")
    model_dir = work / "demo_model"
    to_bf16(base_run, model_dir)
    done_steps = json.loads((base_run / "trainer_state.json").read_text())["global_step"]
    results["base_training"] = {"max_steps": steps, "steps": done_steps, "steps_per_s_calibrated": rate,
                                "budget_s": args.train_seconds, "wall_s_with_startup_and_evals": round(
                                    time.perf_counter() - t0, 1),
                                "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                                "curve": curve(base_run)}
    tar(model_dir, out / "demo_model.tar")
    save(results, out)

    # 4. held-out sentences by held-out voices
    ovoz("eval", str(corpus / "test.jsonl"), "--base", str(model_dir), "--no-adapter", "-o", str(work / "eval-test"),
         "--device", device, "--batch-size", "64", "--max-new-tokens", "64", "--no-progress")
    results["test_heldout_voices"] = cer_of(work / "eval-test", "base")
    log(f"held-out test: {results['test_heldout_voices']}")
    save(results, out)

    # 5. the LoRA step on the shifted domain, with the published recipe's settings
    if shift_job is not None:
        LOG.extend((shift_job.communicate()[0] or "").strip().splitlines()[-3:])
        if shift_job.returncode != 0:
            raise SystemExit("ovoz synth (shifted corpus) failed")
    results["shifted_corpus"] = json.loads((shifted / "synth.json").read_text())["counts"]
    lora = work / "lora"
    recipe = ["--base", str(model_dir), "--data", str(shifted / "train.jsonl"), "--eval-data",
              str(shifted / "dev.jsonl"), "--output-dir", str(lora), "--normalize-text", "normalized",
              "--no-load-in-4bit", "--backend", "transformers", "--compile-layers", "off", "--report-to", "none",
              "--no-progress-bar", "--eval-limit", "128", "--eval-batch-size", "64", "--eval-max-new-tokens", "64",
              "--device", device, "--save-steps", "100000"]
    if args.smoke:
        recipe += ["--max-steps", "3"]
    ovoz("train", *recipe)
    results["lora_training"] = {"curve": curve(lora), "recipe": "seed.yaml defaults (r 8, alpha 16, lr 5e-5, batch 8, "
                                "1 epoch, cosine, warmup 0.03), load_in_4bit off (no bitsandbytes), "
                                "adamw_torch for adamw_8bit (no bitsandbytes), compile_layers off"}
    ovoz("eval", str(shifted / "test.jsonl"), "--base", str(model_dir), "--no-adapter", "--compare", f"lora={lora}",
         "-o", str(work / "eval-shift"), "--device", device, "--batch-size", "64", "--max-new-tokens", "64",
         "--no-progress")
    results["shifted_compare"] = cer_of(work / "eval-shift")
    log(f"shifted test: {results['shifted_compare']}")
    save(results, out)
    adapter_dir = work / "demo_adapter"
    adapter_dir.mkdir(exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "ovoz_train.yaml",
                 "trainer_state.json"):
        shutil.copy(lora / name, adapter_dir / name)
    tar(adapter_dir, out / "demo_adapter.tar")

    # 6. consistency
    from consistency import consistency_rows  # benchmarks/consistency.py

    results["consistency"] = consistency_rows(model_dir, corpus / "test.jsonl", cuda=cuda, limit=24 if args.smoke
                                              else args.consistency_clips, log=log)
    results["total_s"] = round(time.perf_counter() - started, 1)
    (out / "demo_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print_table(results)
    (out / "demo_log.txt").write_text("\n".join(LOG) + "\n")
    return 0


def print_table(results: dict) -> None:
    lines = ["", "| set | model | WER | CER |", "|---|---|---|---|"]
    row = results["test_heldout_voices"]
    lines.append(f"| base test (held-out voices) | demo | {100 * row['wer']:.2f} | {100 * row['cer']:.2f} |")
    for name, row in results["shifted_compare"].items():
        lines.append(f"| shifted test | {name} | {100 * row['wer']:.2f} | {100 * row['cer']:.2f} |")
    lines += ["", "| path | CER | clips |", "|---|---|---|"]
    for row in results["consistency"]["rows"]:
        lines.append(f"| {row['path']} | {row['cer'] if row['cer'] is None else round(100 * row['cer'], 2)} "
                     f"| {row.get('n')} |")
    lines.append(f"total {results['total_s']} s")
    log("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
