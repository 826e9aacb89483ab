"""Where a static-engine decode step spends its time: graph replay alone vs the whole step loop, and the top
CUDA kernels of one eager step (torch.profiler), at a few batch sizes.

    python benchmarks/profile_decode.py [--batches 1 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_e4b, clip_of, real_clips, sync  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from ovoz.processor import build_processor
    from ovoz.static_engine import StaticEngine
    from ovoz.types import SYSTEM_PROMPT, USER_PROMPT
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    model, tokenizer = build_e4b()
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    clip = clip_of(10, real_clips())
    for batch in args.batches:
        engine = StaticEngine(model, processor, slots=batch, max_new_tokens=48)
        engine.stops = []
        engine.run([clip] * batch, max_new_tokens=8, system=SYSTEM_PROMPT, user=USER_PROMPT)  # capture
        engine.positions.fill_(400)
        sync()
        t0 = time.perf_counter()
        for _ in range(20):
            engine._decode()
        sync()
        replay_ms = (time.perf_counter() - t0) * 50
        t0 = time.perf_counter()
        for _ in range(20):
            engine._step()
        sync()
        eager_ms = (time.perf_counter() - t0) * 50
        print(f"batch {batch}: graph replay {replay_ms:.2f} ms/step, eager step {eager_ms:.2f} ms/step", flush=True)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                engine._step()
            sync()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=70))
        del engine
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
