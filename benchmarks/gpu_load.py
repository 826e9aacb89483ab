"""Issue 2 on the GPU: the full-size E4B (random weights) saved as a local folder, loaded through ovoz's own
loading code (bf16, and 4-bit when bitsandbytes is importable), transcribing a real clip end to end.

    python benchmarks/gpu_load.py [--folder /tmp/e4b] [--skip-4bit] [--batch 64]

Prints load time, latency of the first and later calls, the RTFx of ``--batch`` copies of the clip in one
``generate_clips`` call, and peak GPU memory. The transcript is noise.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIPS, DEVICE, PRESET, machine, peak_gib, reset_peak, sync, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=Path("/tmp/ovoz-e4b"))
    parser.add_argument("--skip-4bit", action="store_true")
    parser.add_argument("--batch", type=int, default=64, help="also time this many copies of the clip in one call")
    args = parser.parse_args()

    import torch

    import ovoz
    from ovoz.gemma.testing import save_adapter, save_model_folder

    rows = []
    started = time.perf_counter()
    save_model_folder(args.folder / "model", PRESET, dtype=torch.bfloat16, device=DEVICE)
    save_s = time.perf_counter() - started
    reset_peak()
    started = time.perf_counter()
    save_adapter(args.folder / "model", args.folder / "adapter", style="unsloth", device=DEVICE,
                 dtype=torch.bfloat16)
    adapter_s = time.perf_counter() - started
    print(f"wrote the E4B folder in {save_s:.1f} s, an Unsloth-style adapter in {adapter_s:.1f} s", flush=True)
    reset_peak()
    clip = CLIPS / "1126542829_1_33727_1.wav"  # 8.4 s, 22.05 kHz
    modes = [("bf16 + adapter (merged)", {}), ("bf16 + adapter, engine=generate", {"engine": "generate"})]
    if not args.skip_4bit:
        modes.append(("4-bit + adapter", {"quantization": "4bit"}))
    for name, kwargs in modes:
        try:
            reset_peak()
            t0 = time.perf_counter()
            model = ovoz.load(args.folder / "model", args.folder / "adapter", device=DEVICE, **kwargs)
            sync()
            load_s = time.perf_counter() - t0
            weights = torch.cuda.memory_allocated() / 2**30 if DEVICE == "cuda" else 0.0
            latencies = []
            for _ in range(3):
                t0 = time.perf_counter()
                result = model.transcribe(clip, max_new_tokens=48)
                latencies.append(time.perf_counter() - t0)
            audio = ovoz.load_audio(clip)
            options = ovoz.TranscribeOptions(batch_size=args.batch, max_new_tokens=48)
            model.generate_clips([audio] * args.batch, options)  # first call: engine, graphs
            sync()
            t0 = time.perf_counter()
            model.generate_clips([audio] * args.batch, options)
            sync()
            batch_s = time.perf_counter() - t0
            rows.append({
                "mode": name, "load s": round(load_s, 1), "first call s": round(latencies[0], 2),
                f"batch {args.batch} RTFx": round(args.batch * len(audio) / 16000 / batch_s, 1),
                "later calls s": round(min(latencies[1:]), 3), "tokens": result.segments[0].n_tokens,
                "weights GiB": round(weights, 2), "peak GiB": peak_gib(),
                "adapted": model.info.adapter_summary,
            })
            print(rows[-1], flush=True)
            print("  text:", repr(result.text[:80]), "timings:", result.timings, flush=True)
            del model
            reset_peak()
        except Exception:  # noqa: BLE001 - report and go on to the next mode
            traceback.print_exc()
            rows.append({"mode": name, "load s": "FAILED"})
    print(f"\nmachine: {machine()}; clip {clip.name} (8.4 s); 48 new tokens at most")
    print(table(rows, ["mode", "load s", "first call s", "later calls s", f"batch {args.batch} RTFx", "tokens",
                       "weights GiB", "peak GiB"]))


if __name__ == "__main__":
    main()
