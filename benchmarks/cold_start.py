"""Cold start: from a new process with the model on local disk, the first transcript of one 10 s file.

    python benchmarks/cold_start.py [--folder /tmp/ovoz-e4b] [--runs cold warm warm]

Writes the full-size E4B (random bf16 weights) as a model folder once, then starts a new Python process per run.
Each child times ``import ovoz``, ``ovoz.load`` (weights from disk to the GPU), the first ``transcribe`` of a 10 s clip
(kernels, engine, graph capture included; 48 tokens at most) and a second one. "cold" runs with empty Triton and
torch.compile caches (a fresh folder), "warm" with the caches the earlier runs left. Defaults only: no flag is passed
to ovoz. Prints a table; writes it as JSON under benchmarks/results/.
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
from common import DEVICE, PRESET, clip_of, real_clips, table, write_results  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import ovoz
t_import = time.perf_counter()
model = ovoz.load(sys.argv[1], adapter=None)
import torch
torch.cuda.synchronize() if torch.cuda.is_available() else None
t_load = time.perf_counter()
first = model.transcribe(sys.argv[2], max_new_tokens=48)
t_first = time.perf_counter()
second = model.transcribe(sys.argv[2], max_new_tokens=48)
t_second = time.perf_counter()
print(json.dumps({"import s": t_import - t0, "load s": t_load - t_import, "first transcript s": t_first - t_load,
                  "to first transcript s": t_first - t0, "second transcript s": t_second - t_first,
                  "first timings": first.timings}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=Path("/tmp/ovoz-e4b"))
    parser.add_argument("--runs", nargs="+", default=["cold", "warm"], choices=["cold", "warm"])
    args = parser.parse_args()

    import soundfile
    import torch

    from ovoz.gemma.testing import save_model_folder

    model_dir = args.folder / "model"
    if not (model_dir / "config.json").exists():
        t0 = time.perf_counter()
        save_model_folder(model_dir, PRESET, dtype=torch.bfloat16, device=DEVICE)
        print(f"wrote {model_dir} in {time.perf_counter() - t0:.1f} s", flush=True)
    torch.cuda.empty_cache()
    clip = args.folder / "clip10s.wav"
    soundfile.write(clip, clip_of(10, real_clips()), 16000)
    caches = tempfile.mkdtemp(prefix="ovoz-caches-")
    rows = []
    for run in args.runs:
        if run == "cold":
            caches = tempfile.mkdtemp(prefix="ovoz-caches-")
        env = {**os.environ, "TRITON_CACHE_DIR": f"{caches}/triton", "TORCHINDUCTOR_CACHE_DIR": f"{caches}/inductor"}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), str(clip)], env=env, capture_output=True,
                              text=True, timeout=600)
        wall = time.perf_counter() - t0
        if done.returncode:
            print(done.stderr[-3000:], flush=True)
            rows.append({"run": run, "process wall s": round(wall, 2), "error": done.stderr.strip().splitlines()[-1]})
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        row = {"run": run, "process wall s": round(wall, 2),
               **{k: round(v, 2) for k, v in result.items() if isinstance(v, float)}}
        print(row, "first timings:", result["first timings"], flush=True)
        rows.append(row)
    columns = ["run", "process wall s", "import s", "load s", "first transcript s", "to first transcript s",
               "second transcript s"]
    print(table(rows, columns))
    write_results("cold_start", rows, columns)


if __name__ == "__main__":
    main()
