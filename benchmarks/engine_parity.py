"""Does the static engine reproduce batch-1 ``generate`` on this machine's transformers? Tiny random Gemma 4
(float32), real clips, on the CPU and on CUDA, with the packed decode attention and CUDA graphs on and off.

    python benchmarks/engine_parity.py
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import real_clips  # noqa: E402


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    import torch
    import transformers
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    import ovoz.gemma.static_engine as se
    from ovoz.gemma.generate import generate
    from ovoz.gemma.processor import build_processor
    from ovoz.gemma.testing import build_random_model, build_tokenizer, model_config
    from ovoz.types import SYSTEM_PROMPT as S
    from ovoz.types import USER_PROMPT as U

    print("transformers", transformers.__version__)
    tokenizer = build_tokenizer()
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    clips = real_clips()
    packed = se.packed_attention
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    n = args.tokens
    for device in devices:
        model = build_random_model(model_config(tokenizer, args.preset), device=device,
                                   dtype=getattr(torch, args.dtype))
        reference = [generate(model, processor, [c], max_new_tokens=n, system=S, user=U)[0].token_ids for c in clips]
        for use_packed in (True, False):
            se.packed_attention = packed if use_packed else (lambda config, **kwargs: contextlib.nullcontext())
            for graphs, fused in ([(False, False), (True, False), (True, True)] if device == "cuda"
                                  else [(False, False)]):
                engine = se.StaticEngine(model, processor, slots=3, max_new_tokens=n, use_cuda_graphs=graphs,
                                         fused_kernels=fused)
                outputs = engine.run(clips, max_new_tokens=n, system=S, user=U)
                agree = [next((i for i, (a, b) in enumerate(zip(r, o.token_ids)) if a != b), min(len(r), n))
                         for r, o in zip(reference, outputs)]
                print(f"{device} packed={use_packed} graphs={graphs} fused={fused}: equal prefix per clip {agree} "
                      f"(of {[len(r) for r in reference]})", flush=True)
        se.packed_attention = packed
        # The first token straight from prefill, against a plain forward, for one clip.
        from ovoz.gemma.generate import prepare_inputs

        inputs = prepare_inputs(processor, [clips[0]], S, U)
        inputs = {k: v.to(device, dtype=model.dtype) if k == "input_features" else v.to(device) for k, v in inputs.items()}
        with torch.inference_mode():
            plain = model(**inputs, use_cache=False).logits[0, -1].float().log_softmax(-1)
            engine = se.StaticEngine(model, processor, slots=1, max_new_tokens=n, use_cuda_graphs=False,
                                     fused_kernels=False)
            with packed(engine.text.config):
                token, logprob, _ = engine._prefill([se._Request(clips[0], n, lambda result: None)], [0], S, U)
        print(f"{device}: prefill token {token.item()} (plain argmax {plain.argmax().item()}), engine logprob "
              f"{logprob.item():.4f} vs plain logprob of that token {plain[token.item()].item():.4f}, "
              f"plain max {plain.max().item():.4f}", flush=True)


if __name__ == "__main__":
    main()
