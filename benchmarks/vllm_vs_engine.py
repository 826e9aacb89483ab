"""vLLM against ovoz's own engine: the full-size random-weight E4B (bf16, with its vision tower, which vLLM needs),
the same 10 s clips of real Uzbek speech, the same prompt and token cap, through ``ovoz.load(..., engine=...)``'s
decoder. RTFx (seconds of audio per second of wall time) at each batch size; the best row per engine is marked.

    python benchmarks/vllm_vs_engine.py [--clips 256] [--tokens 48] [--batch-sizes 1 8 32 128] [--engines ovoz vllm]
    python benchmarks/vllm_vs_engine.py --smoke    # tiny model on the CPU: checks the code path, not a measurement

Run it in an environment that has vLLM (docs/vllm.md). Each (engine, batch size) runs in a process of its own, so
that the two engines never share GPU memory and vLLM's ``max_num_seqs`` is the batch size: ovoz's engine decodes
``batch_size`` rows in its static CUDA-graph engine, vLLM schedules at most ``max_num_seqs`` requests at once. Each
child loads the model, decodes one warm-up round (compilation, CUDA graphs), then times the decode of every clip.
Random weights rarely emit a stop token, so each clip decodes about ``--tokens`` tokens: the new-token count is
printed beside the time. Writes the table as JSON under benchmarks/results/ (``--smoke``: under a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clip_of, real_clips, table, write_results  # noqa: E402

COLUMNS = ["engine", "batch", "clips", "audio s", "load s", "warm-up s", "wall s", "RTFx", "new tokens",
           "tokens/s", "best"]


def child(args: argparse.Namespace) -> None:
    """One engine at one batch size in this process; prints one JSON row."""
    import numpy as np

    import ovoz
    from ovoz.decoding import DecodeStats, Prompt
    from ovoz.types import SYSTEM_PROMPT, USER_PROMPT

    speech = real_clips()
    clips = [clip_of(10, speech[i % len(speech):] + speech[: i % len(speech)]) for i in range(args.clips)]
    audio_s = sum(len(c) for c in clips) / 16000
    device = "cpu" if args.smoke else "cuda"
    dtype = "float32" if args.smoke else "bfloat16"
    t0 = time.perf_counter()
    if args.child == "vllm":
        model = ovoz.load(args.model, adapter=None, dtype=dtype, engine="vllm",
                          vllm_options={"max_num_seqs": args.batch,
                                        **({} if args.smoke else {"gpu_memory_utilization": 0.9})})
    else:
        model = ovoz.load(args.model, adapter=None, device=device, dtype=dtype)
    load_s = time.perf_counter() - t0
    decoder, prompt = model.decoder, Prompt(SYSTEM_PROMPT, USER_PROMPT)
    t0 = time.perf_counter()
    decoder.decode(clips[: args.batch], [args.tokens] * min(args.batch, len(clips)), prompt=prompt,
                   batch_size=args.batch)
    warm_s = time.perf_counter() - t0
    stats = DecodeStats()
    _sync()
    t0 = time.perf_counter()
    results = decoder.decode(clips, [args.tokens] * len(clips), prompt=prompt, batch_size=args.batch, stats=stats)
    _sync()
    wall = time.perf_counter() - t0
    tokens = sum(len(r.token_ids) for r in results)
    print(json.dumps({"engine": args.child, "batch": args.batch, "clips": len(clips), "audio s": round(audio_s, 1),
                      "load s": round(load_s, 1), "warm-up s": round(warm_s, 2), "wall s": round(wall, 3),
                      "RTFx": round(audio_s / wall, 1), "new tokens": tokens,
                      "tokens/s": round(tokens / wall, 1), "mean logprob": float(np.mean(
                          [r.avg_logprob for r in results if r.avg_logprob is not None] or [0.0]))}))
    close = getattr(decoder, "close", None)
    if close is not None:
        close()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU (a code-path check)")
    parser.add_argument("--folder", type=Path, default=None, help="where the model folder is written (kept)")
    parser.add_argument("--clips", type=int, default=None, help="10 s clips decoded per run (default 256; smoke 4)")
    parser.add_argument("--tokens", type=int, default=None, help="new tokens per clip at most (default 48; smoke 8)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="default 1 8 32 128 (smoke: 1 4)")
    parser.add_argument("--engines", nargs="+", default=["ovoz", "vllm"], choices=["ovoz", "vllm"])
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; smoke: a temp dir)")
    parser.add_argument("--child", choices=["ovoz", "vllm"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.clips = args.clips or (4 if args.smoke else 256)
    args.tokens = args.tokens or (8 if args.smoke else 48)
    if args.child:
        child(args)
        return

    import torch

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on the GPU box, or pass --smoke")
    from ovoz.gemma.testing import save_model_folder

    folder = args.folder or Path(tempfile.gettempdir()) / ("ovoz-vllm-bench-tiny" if args.smoke else "ovoz-vllm-bench-e4b")
    model_dir = folder / "model"
    if not (model_dir / "config.json").exists():
        t0 = time.perf_counter()
        save_model_folder(model_dir, "tiny" if args.smoke else "e4b", vision=True,
                          dtype=torch.float32 if args.smoke else torch.bfloat16,
                          device="cpu" if args.smoke else "cuda")
        print(f"wrote {model_dir} in {time.perf_counter() - t0:.1f} s", flush=True)
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    rows = []
    for engine in args.engines:
        for batch in args.batch_sizes or ([1, 4] if args.smoke else [1, 8, 32, 128]):
            command = [sys.executable, __file__, "--child", engine, "--model", str(model_dir), "--batch", str(batch),
                       "--clips", str(args.clips), "--tokens", str(args.tokens)] + (["--smoke"] if args.smoke else [])
            done = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                print(done.stderr[-3000:], flush=True)
                rows.append({"engine": engine, "batch": batch, "best": f"error: {done.stderr.strip()[-200:]}"})
                continue
            rows.append(json.loads(lines[-1]))
            print(json.dumps(rows[-1]), flush=True)
    for engine in args.engines:
        measured = [r for r in rows if r["engine"] == engine and "RTFx" in r]
        if measured:
            max(measured, key=lambda r: r["RTFx"])["best"] = "best"
    print(table(rows, COLUMNS))
    out = args.out or (tempfile.mkdtemp(prefix="ovoz-vllm-bench-") if args.smoke else None)
    write_results("vllm_vs_engine" + ("-smoke" if args.smoke else ""), rows, COLUMNS, out_dir=out)


if __name__ == "__main__":
    main()
