"""Where a static-engine decode step spends its time: graph replay alone vs the whole step loop, and the top
CUDA kernels of one eager step (torch.profiler), at a few batch sizes.

    python benchmarks/profile_decode.py [--batches 1 128] [--fused off on]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_e4b, clip_of, real_clips, sync, table  # noqa: E402


def ms_per_call(step, warmup: int = 2, calls: int = 20) -> float:
    for _ in range(warmup):
        step()
    sync()
    started = time.perf_counter()
    for _ in range(calls):
        step()
    sync()
    return (time.perf_counter() - started) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--fused", nargs="+", choices=["off", "on"], default=["off", "on"],
                        help="ovoz.gemma.kernels.fused kernels off and/or on")
    parser.add_argument("--rows", type=int, default=14, help="kernels listed per profile")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    from ovoz.gemma.kernels.attention import packed_attention
    from ovoz.gemma.processor import build_processor
    from ovoz.gemma.static_engine import StaticEngine
    from ovoz.types import SYSTEM_PROMPT, USER_PROMPT

    model, tokenizer = build_e4b()
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    clip = clip_of(10, real_clips())
    from ovoz.gemma.kernels.fused import FusedKernels

    summary = []
    for fused in args.fused:
        for batch in args.batches:
            engine = StaticEngine(model, processor, slots=batch, max_new_tokens=48, fused_kernels=fused == "on")
            engine.stops = []
            engine.run([clip] * batch, max_new_tokens=8, system=SYSTEM_PROMPT, user=USER_PROMPT)  # capture
            engine.positions.fill_(400)
            kernels = FusedKernels(model) if fused == "on" else contextlib.nullcontext()
            with torch.inference_mode(), packed_attention(engine.text.config), kernels:
                # The first replay captures the graph over 512 positions if the run did not.
                replay_ms = ms_per_call(lambda: engine._decode(400))
                eager_ms = ms_per_call(lambda: engine._step(512))
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(3):
                        engine._step(512)
                    sync()
            events = [e for e in prof.key_averages() if e.self_device_time_total > 0]  # kernels
            n_kernels = sum(e.count for e in events) / 3
            kernel_ms = sum(e.self_device_time_total for e in events) / 3 / 1000
            row = {"fused": fused, "batch": batch, "graph replay ms/step": round(replay_ms, 2),
                   "eager ms/step": round(eager_ms, 2), "kernels/step": round(n_kernels),
                   "kernel ms/step": round(kernel_ms, 2)}
            summary.append(row)
            print(row, flush=True)
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows, max_name_column_width=70))
            if batch > 1:  # where a prefill of the whole batch spends its time
                from ovoz.gemma.static_engine import _Request

                requests = [_Request(clip, 8, lambda result: None) for _ in range(batch)]
                with torch.inference_mode(), packed_attention(engine.text.config), kernels:
                    engine._prefill(requests, list(range(batch)), SYSTEM_PROMPT, USER_PROMPT)
                    sync()
                    t0 = time.perf_counter()
                    engine._prefill(requests, list(range(batch)), SYSTEM_PROMPT, USER_PROMPT)
                    sync()
                    prefill_ms = (time.perf_counter() - t0) * 1000
                    with profile(activities=[ProfilerActivity.CUDA]) as prof:
                        engine._prefill(requests, list(range(batch)), SYSTEM_PROMPT, USER_PROMPT)
                        sync()
                events = [e for e in prof.key_averages() if e.self_device_time_total > 0]
                print(f"prefill of {batch} clips: {prefill_ms:.0f} ms wall, "
                      f"{sum(e.self_device_time_total for e in events) / 1000:.0f} ms of kernels")
                print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows,
                                                max_name_column_width=70))
            del engine
            torch.cuda.empty_cache()
    print(table(summary, list(summary[0])))


if __name__ == "__main__":
    main()
