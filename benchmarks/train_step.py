"""Issue 6: one training step, the plain PEFT way against ovoz's, on the full-size E4B (random bf16 weights).

    python benchmarks/train_step.py [--batch 8] [--seconds 10] [--tokens 40] [--steps 10]
                                    [--variants plain+ckpt,ovoz+ckpt,ovoz+ckpt+compile,...] [--ple-cpu]
                                    [--base-4bit FOLDER] [--profile]
    python benchmarks/train_step.py --smoke     # the same code path, tiny preset on the CPU, in seconds

A variant is ``plain`` or ``ovoz`` with any of ``+ckpt`` (gradient checkpointing, non-reentrant), ``+compile``
(``ovoz.gemma.kernels.compiled_layers``: each decoder/conformer layer's forward through torch.compile), ``+ple`` (the
per-layer embedding table on the CPU, ``ovoz.gemma.memory``), ``+nocut`` (ovoz's loss without the KV-shared
layers' cut, ``ovoz.gemma.kernels.kv_shared``) and ``+fused`` (``ovoz.gemma.kernels.fused`` kernels). All variants run in one process on the same model, one after another. The older flags
(``--checkpointing``, ``--fused``, ``--skip-plain``) still build the variant list when ``--variants`` is not given.

Both steps train the seed's LoRA (regex targets over language tower, audio tower and embedder, r=8, alpha=16)
with torch AdamW on the same batch from ovoz's collator: random-noise clips of ``--seconds`` and transcripts of
``--tokens`` tokens, loss on the transcript + ``<turn|>``.

* plain: ``model(**batch, labels=labels).loss``, full-vocabulary logits over every position;
* ovoz: ``ovoz.train.loss.selective_loss``: the last positions only through Gemma 4's KV-shared layers, and
  ``lm_head`` + soft-capping + cross-entropy at labelled positions only.

Prints ms/step, samples/s and peak GiB per variant, and checks that both losses agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (random noise)")
    parser.add_argument("--tokens", type=int, default=40, help="transcript length in tokens")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--variants", default=None,
                        help="comma-separated: plain|ovoz, each with optional +ckpt, +compile, +ple, +nocut, +fused")
    parser.add_argument("--ple-cpu", action="store_true",
                        help="keep the per-layer embedding table on the CPU (ovoz.gemma.memory)")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (non-reentrant)")
    parser.add_argument("--fused", action="store_true", help="also time ovoz's step with ovoz.gemma.kernels.fused kernels")
    parser.add_argument("--profile", action="store_true", help="print the top CUDA kernels of ovoz's last variant")
    parser.add_argument("--skip-plain", action="store_true", help="time ovoz's step(s) only")
    parser.add_argument("--no-autocast", action="store_true",
                        help="no bf16 autocast (the Trainer autocasts with bf16=True, as the recipe sets)")
    parser.add_argument("--lora-bf16", action="store_true",
                        help="LoRA weights in bf16 (PEFT keeps them in float32 by default)")
    parser.add_argument("--base-4bit", type=Path, default=None, metavar="FOLDER",
                        help="load this saved model folder in 4-bit through ovoz's training loader (ovoz step only)")
    parser.add_argument("--smoke", action="store_true", help="tiny preset on the CPU: checks the code path only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        os.environ["OVOZ_BENCH_SMOKE"] = "1"
        args.steps, args.warmup, args.batch = min(args.steps, 2), min(args.warmup, 1), min(args.batch, 2)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    from ovoz.gemma.adapter import target_regex
    from ovoz.gemma.processor import build_processor
    from ovoz.gemma.testing import build_random_model, build_tokenizer, model_config
    from ovoz.train.collator import AudioCollator
    from ovoz.train.loss import selective_loss

    tokenizer = build_tokenizer()
    dtype = torch.float32 if common.SMOKE else torch.bfloat16
    if args.base_4bit is not None:
        from ovoz.gemma.testing import save_model_folder
        from ovoz.gemma.training import _load_transformers

        if not (args.base_4bit / "config.json").exists():  # the full-size random model, saved once
            save_model_folder(args.base_4bit, common.PRESET, dtype=torch.bfloat16, device=common.DEVICE)
        args.skip_plain = True
        model = _load_transformers(None, args.base_4bit, True, torch.bfloat16, common.DEVICE,
                                   ple_on_cpu=args.ple_cpu)
    else:
        model = build_random_model(model_config(tokenizer, common.PRESET), seed=0, dtype=dtype,
                                   device=common.DEVICE)
        if args.ple_cpu:
            from ovoz.gemma.memory import per_layer_embeddings_on_cpu

            per_layer_embeddings_on_cpu(model, common.DEVICE)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                                             target_modules=target_regex(("language", "audio", "embedder"))),
                           autocast_adapter_dtype=not args.lora_bf16)
    model.train()
    model.config.use_cache = False
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz "), size=args.tokens))  # 1 byte-token per char
    examples = [{"audio": rng.standard_normal(int(args.seconds * 16000)).astype(np.float32) * 0.1, "text": text}
                for _ in range(args.batch)]
    batch = AudioCollator(processor)(examples)
    batch = {k: v.to(common.DEVICE, dtype=dtype) if k == "input_features" else v.to(common.DEVICE)
             for k, v in batch.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    autocast = not (args.no_autocast or common.SMOKE)

    def plain_step() -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        return float(loss.detach())

    def ovoz_step() -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss, _ = selective_loss(model, batch)
        loss.backward()
        return float(loss.detach())

    import contextlib

    from ovoz.gemma.kernels.compiled_layers import compile_layers, uncompile_layers
    from ovoz.gemma.kernels.fused import FusedKernels
    from ovoz.gemma.kernels.kv_shared import KVSharedLayersOnLastPositions
    from ovoz.gemma.memory import per_layer_embeddings_back, per_layer_embeddings_on_cpu

    steps = {"plain": plain_step, "ovoz": ovoz_step}
    supported = KVSharedLayersOnLastPositions.SUPPORTED

    @contextlib.contextmanager
    def variant(name: str):
        kind, *options = name.split("+")
        if kind not in steps or not set(options) <= {"ckpt", "compile", "fused", "ple", "nocut"}:
            raise SystemExit(f"--variants: {name!r} is not plain|ovoz with +ckpt, +compile, +ple, +nocut or +fused")
        if "ple" in options:
            per_layer_embeddings_on_cpu(model, common.DEVICE)
        if "nocut" in options:
            KVSharedLayersOnLastPositions.SUPPORTED = ()  # the cut then finds no layers to cut
        if "ckpt" in options:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if "compile" in options:
            compile_layers(model, backend="aot_eager" if common.SMOKE else "inductor")
        try:
            with FusedKernels(model) if "fused" in options else contextlib.nullcontext():
                yield steps[kind]
        finally:
            uncompile_layers(model)
            model.gradient_checkpointing_disable()
            KVSharedLayersOnLastPositions.SUPPORTED = supported
            if "ple" in options and not args.ple_cpu:  # back on the GPU for the next variant
                per_layer_embeddings_back(model, common.DEVICE)

    names = args.variants.split(",") if args.variants else legacy_variants(args)
    rows = []
    for name in names:
        with variant(name) as step:
            rows.append(time_variant(name, step, args, optimizer, common))
    if args.profile and not common.SMOKE:
        from torch.profiler import ProfilerActivity, profile

        name = names[-1]
        with variant(name) as step:
            for _ in range(args.warmup):  # compile again outside the profile
                step()
                optimizer.zero_grad(set_to_none=True)
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                step()
                optimizer.zero_grad(set_to_none=True)
                common.sync()
        common.print_profile(prof, name)
    print(f"# train step: batch {args.batch}, {args.seconds:g} s clips, {args.tokens}-token transcripts, "
          f"{batch['input_ids'].shape[1]} tokens per row, {n_trainable / 1e6:.1f} M trainable, "
          f"autocast {'bf16' if autocast else 'off'}, LoRA {'bf16' if args.lora_bf16 else 'float32'}, "
          f"{'4-bit base, ' if args.base_4bit else ''}{'per-layer embeddings on the CPU, ' if args.ple_cpu else ''}"
          f"{'SMOKE (tiny, CPU)' if common.SMOKE else 'E4B'}")
    print(f"# {common.machine()}")
    print(common.table(rows, ["step", "ms/step", "samples/s", "weights GiB", "peak GiB", "warm-up s", "loss"]))
    losses = [row["loss"] for row in rows]
    agree = max(losses) - min(losses) <= 1e-2 * max(1.0, abs(losses[0]))
    print(f"# losses agree: {agree}")
    return 0 if agree else 1


def legacy_variants(args: argparse.Namespace) -> list[str]:
    """The variant list the flags of the first versions of this script meant."""
    ckpt = "+ckpt" if args.checkpointing else ""
    names = [] if args.skip_plain else [f"plain{ckpt}"]  # --base-4bit sets skip_plain
    names.append(f"ovoz{ckpt}")
    if args.fused:
        names.append(f"ovoz{ckpt}+fused")
    return names


def time_variant(name, step, args, optimizer, common) -> dict:
    import numpy as np

    common.reset_peak()
    weights = common.allocated_gib()
    losses = []
    started = time.perf_counter()
    for _ in range(args.warmup):
        step()
        optimizer.zero_grad(set_to_none=True)  # no update: both variants see the same weights
    common.sync()
    warm_up = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.steps):
        losses.append(step())
        optimizer.zero_grad(set_to_none=True)
    common.sync()
    seconds = (time.perf_counter() - started) / args.steps
    return {"step": name, "ms/step": round(1000 * seconds, 1),
            "samples/s": round(args.batch / seconds, 2), "weights GiB": weights, "peak GiB": common.peak_gib(),
            "warm-up s": round(warm_up, 1),
            "loss": round(float(np.mean(losses)), 4)}


if __name__ == "__main__":
    sys.exit(main())
