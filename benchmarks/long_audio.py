"""Issue 3: a 1-hour recording (the real Uzbek clips with pauses between them, repeated) transcribed end to end
with the full-size random-weight E4B through ``Transcriber.transcribe`` (VAD -> chunks -> static engine).

    python benchmarks/long_audio.py [--hours 1] [--batch-size 64] [--tokens-per-s 6] [--fused-kernels on|off|auto]

Random weights never emit a stop token, so every chunk decodes ``tokens_per_s * duration + 16`` tokens (6 tokens/s
is about what Uzbek read speech needs); the work is fixed and realistic. Prints wall time, RTFx, peak GPU
memory and the share of time in decoding audio, VAD, features, encoder, prefill and decode.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEVICE, build_e4b, machine, peak_gib, real_clips, reset_peak, sync, table  # noqa: E402


def assemble(seconds: float, path: Path) -> float:
    import soundfile

    rng = np.random.default_rng(0)
    clips = real_clips()
    pieces, total = [], 0
    while total < seconds * 16000:
        for clip in clips:
            pause = np.zeros(int(rng.uniform(0.5, 3.0) * 16000), np.float32)
            pieces += [clip, pause]
            total += len(clip) + len(pause)
    audio = np.concatenate(pieces)[: int(seconds * 16000)]
    soundfile.write(path, audio, 16000)
    return len(audio) / 16000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tokens-per-s", type=float, default=6.0)
    parser.add_argument("--path", type=Path, default=Path("/tmp/ovoz-long.wav"))
    parser.add_argument("--fused-kernels", choices=["on", "off", "auto"], default="on",
                        help="ovoz.gemma.kernels.fused kernels (default on, as measured in BENCHMARKS.md; auto leaves 1 h unfused)")
    args = parser.parse_args()

    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    import ovoz
    from ovoz.gemma.decoder import GemmaDecoder
    from ovoz.gemma.loading import ModelInfo
    from ovoz.gemma.processor import build_processor
    from ovoz.transcriber import Transcriber

    duration = assemble(args.hours * 3600, args.path)
    model, tokenizer = build_e4b()
    processor = build_processor(Gemma4AudioFeatureExtractor(), tokenizer)
    fused = {"on": True, "off": False, "auto": None}[args.fused_kernels]
    transcriber = Transcriber(GemmaDecoder(model, processor, ModelInfo("random e4b", None, DEVICE, "bfloat16", None),
                                           engine="static", fused_kernels=fused))
    options = ovoz.TranscribeOptions(batch_size=args.batch_size, tokens_per_s_cap=args.tokens_per_s)
    engine = transcriber.decoder.static_engine(args.batch_size, options.max_new_tokens)
    engine.stops = []  # fixed work (random weights)

    encoder = {"s": 0.0, "t0": 0.0}

    def before(*_):
        sync()
        encoder["t0"] = time.perf_counter()

    def after(*_):
        sync()
        encoder["s"] += time.perf_counter() - encoder["t0"]

    tower = model.model.audio_tower
    tower.register_forward_pre_hook(before)
    tower.register_forward_hook(after)

    # Warm-up on 2 minutes (graph capture, kernel selection), then the measured run.
    transcriber.transcribe((np.zeros(1, np.float32) + ovoz.load_audio(args.path)[: 120 * 16000], 16000),
                           options=options)
    reset_peak()
    encoder["s"] = 0.0
    sync()
    started = time.perf_counter()
    result = transcriber.transcribe(args.path, options=options)
    sync()
    wall = time.perf_counter() - started
    t = result.timings
    prefill_text = t.get("prefill_s", 0.0) - encoder["s"]
    decode = t["generate_s"] - t.get("prefill_s", 0.0)
    segments = result.segments
    assert all(a.end_s <= b.start_s for a, b in zip(segments, segments[1:])), "segments overlap"
    assert segments[-1].end_s <= result.duration_s
    rows = [{"stage": name, "s": round(value, 2), "share": f"{100 * value / wall:.1f}%"} for name, value in [
        ("decode audio", t["decode_audio_s"]), ("VAD", t["vad_s"]), ("features", t["features_s"]),
        ("audio encoder", encoder["s"]), ("prefill (text)", prefill_text), ("decode", decode),
        ("total", wall),
    ]]
    n_tokens = sum(s.n_tokens for s in segments)
    print(f"\nmachine: {machine()}")
    print(f"{duration / 3600:.2f} h of audio -> {len(segments)} segments (longest "
          f"{max(s.end_s - s.start_s for s in segments):.1f} s), {n_tokens} tokens; batch {args.batch_size}; "
          f"wall {wall:.1f} s; RTFx {duration / wall:.0f}; peak GPU {peak_gib()} GiB")
    print(table(rows, ["stage", "s", "share"]))


if __name__ == "__main__":
    main()
