"""Issue 6: one training step, the plain PEFT way against ovoz's, on the full-size E4B (random bf16 weights).

    python benchmarks/train_step.py [--batch 8] [--seconds 10] [--tokens 40] [--steps 10] [--checkpointing]
    python benchmarks/train_step.py --smoke     # the same code path, tiny preset on the CPU, in seconds

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
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (non-reentrant)")
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

    from ovoz.adapter import target_regex
    from ovoz.processor import build_processor
    from ovoz.testing import build_random_model, build_tokenizer, model_config
    from ovoz.train.collator import AudioCollator
    from ovoz.train.loss import selective_loss

    tokenizer = build_tokenizer()
    dtype = torch.float32 if common.SMOKE else torch.bfloat16
    model = build_random_model(model_config(tokenizer, common.PRESET), seed=0, dtype=dtype, device=common.DEVICE)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                                             target_modules=target_regex(("language", "audio", "embedder"))))
    model.train()
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
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

    def plain_step() -> float:
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        return float(loss.detach())

    def ovoz_step() -> float:
        loss, _ = selective_loss(model, batch)
        loss.backward()
        return float(loss.detach())

    rows = []
    for name, step in (("plain PEFT", plain_step), ("ovoz", ovoz_step)):
        common.reset_peak()
        losses = []
        for _ in range(args.warmup):
            step()
            optimizer.zero_grad(set_to_none=True)  # no update: both variants see the same weights
        common.sync()
        started = time.perf_counter()
        for _ in range(args.steps):
            losses.append(step())
            optimizer.zero_grad(set_to_none=True)
        common.sync()
        seconds = (time.perf_counter() - started) / args.steps
        rows.append({"step": name, "ms/step": round(1000 * seconds, 1),
                     "samples/s": round(args.batch / seconds, 2), "peak GiB": common.peak_gib(),
                     "loss": round(float(np.mean(losses)), 4)})
    print(f"# train step: batch {args.batch}, {args.seconds:g} s clips, {args.tokens}-token transcripts, "
          f"{batch['input_ids'].shape[1]} tokens per row, {n_trainable / 1e6:.1f} M trainable, "
          f"checkpointing {'on' if args.checkpointing else 'off'}, {'SMOKE (tiny, CPU)' if common.SMOKE else 'E4B'}")
    print(f"# {common.machine()}")
    print(common.table(rows, ["step", "ms/step", "samples/s", "peak GiB", "loss"]))
    agree = abs(rows[0]["loss"] - rows[1]["loss"]) <= 1e-2 * max(1.0, abs(rows[0]["loss"]))
    print(f"# losses agree: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
