"""Gemma 4's small kernels three ways: ovoz's hand-written Triton kernels, the torch.compile'd functions of ovoz's
fused module, and transformers' eager code, at E4B's decode (batch 1 and 128) and prefill shapes; then the cold
and warm start of each kernel set in a new process (empty Triton/Inductor caches, then the same caches again).

    python benchmarks/bench_kernels.py           # on the GPU box; table to stdout, JSON under benchmarks/results/
    python benchmarks/bench_kernels.py --smoke   # CPU, Triton's interpreter, tiny shapes: checks the code path

Per row: microseconds a call launched alone (``triton.testing.do_bench`` median, launch included) and inside a
CUDA graph of back-to-back calls (replay median / calls, what the engine's captured decode step pays), the bytes
the call must move (each input read once, the output written once) over the graph time, and the output's
``|out - ref| / |ref|`` against the float64 reference on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMOKE = "--smoke" in sys.argv or os.environ.get("OVOZ_BENCH_SMOKE") == "1"
if SMOKE:  # before triton is imported anywhere: the kernels run on CPU tensors through the interpreter
    os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
import common


def table(rows: list[dict], columns: list[str]) -> str:
    return common.table([{k: "-" if v is None else v for k, v in row.items()} for row in rows], columns)


E4B = {"hidden": 2560, "inner": 10240, "heads": 8, "kv_heads": 2, "head_dim": 256, "global_head_dim": 512,
       "width": 1024}
TINY = {"hidden": 64, "inner": 128, "heads": 4, "kv_heads": 1, "head_dim": 32, "global_head_dim": 64, "width": 80}
"""Sizes: E4B's (``width``: cache positions a decode step attends over, one 128-position bucket below the
engine's capacity for 30 s clips and 256 new tokens)."""
COLUMNS = ["kernel", "case", "shape", "impl", "us/call", "us/call in graph", "GB/s in graph", "rel err"]
START_COLUMNS = ["impl", "run", "cases", "first calls s", "import s", "process s"]


def fused_module():
    """ovoz's torch.compile'd kernels: ovoz.gemma.kernels.fused after the gemma package move, ovoz.fused before."""
    try:
        from ovoz.gemma.kernels import fused
    except ImportError:
        from ovoz import fused
    return fused


def cases(dims: dict, shapes: dict) -> list[dict]:
    """(kernel, case, input shapes) for each batch shape: ``shapes`` maps a case name to (batch, tokens)."""
    rows = []
    for case, (batch, tokens) in shapes.items():
        lead = (batch, tokens)
        rows += [
            {"kernel": "rms_norm", "case": case, "x": (*lead, dims["hidden"]), "scale": True},
            {"kernel": "rms_norm", "case": case, "x": (*lead, dims["heads"], dims["head_dim"]), "scale": True},
            {"kernel": "rms_norm", "case": case, "x": (*lead, dims["heads"], dims["global_head_dim"]), "scale": True},
            {"kernel": "rms_norm", "case": case, "x": (*lead, dims["kv_heads"], dims["head_dim"]), "scale": False},
            {"kernel": "gelu_tanh_mul", "case": case, "x": (*lead, dims["inner"])},
            {"kernel": "apply_rotary", "case": case, "x": (*lead, dims["heads"], dims["head_dim"])},
            {"kernel": "apply_rotary", "case": case, "x": (*lead, dims["heads"], dims["global_head_dim"])},
        ]
        if tokens == 1:  # decode attention over the cache: a sliding layer's width and a global layer's
            for dim in (dims["head_dim"], dims["global_head_dim"]):
                rows.append({"kernel": "decode_attention", "case": case, "width": dims["width"],
                             "x": (batch, dims["heads"], 1, dim)})
    return rows


def build(case: dict, device: str, dtype, compile_backend: str) -> tuple[dict, list, object]:
    """The three implementations as zero-argument callables over one set of random inputs, and the reference."""
    import torch
    from transformers.activations import ACT2FN
    from transformers.models.gemma4 import modeling_gemma4 as m

    from ovoz.gemma.kernels import triton_attention, triton_ops

    fused = fused_module()
    compiled = _compiled(fused, compile_backend)
    x = torch.randn(case["x"], device=device).to(dtype)
    width = case["x"][-1]
    if case["kernel"] == "rms_norm":
        weight = torch.randn(width, device=device).to(dtype) if case["scale"] else None
        norm = m.Gemma4RMSNorm(width, eps=1e-6, with_scale=case["scale"]).to(device=device, dtype=dtype)
        if case["scale"]:
            norm.weight.data.copy_(weight)
        ref = x.double() * (x.double().pow(2).mean(-1, keepdim=True) + 1e-6) ** -0.5
        ref = ref * weight.double() if weight is not None else ref
        impls = {"triton": lambda: triton_ops.rms_norm(x, weight, 1e-6),
                 "torch.compile": lambda: compiled["rms_norm"](x, weight, 1e-6), "eager": lambda: norm(x)}
        inputs = [x] + ([weight] if weight is not None else [])
    elif case["kernel"] == "gelu_tanh_mul":
        up = torch.randn(case["x"], device=device).to(dtype)
        act = ACT2FN["gelu_pytorch_tanh"]
        ref = act(x.double()) * up.double()
        impls = {"triton": lambda: triton_ops.gelu_tanh_mul(x, up),
                 "torch.compile": lambda: compiled["gelu_tanh_mul"](x, up), "eager": lambda: act(x) * up}
        inputs = [x, up]
    elif case["kernel"] == "decode_attention":
        batch, heads, _, dim = case["x"]
        kv_heads = heads // 4 if heads >= 4 else 1
        cache = torch.randn(2, batch, kv_heads, case["width"] + 128, dim, device=device).to(dtype)
        key, value = cache[0, :, :, : case["width"]], cache[1, :, :, : case["width"]]  # views, as the engine's
        last = torch.randint(case["width"] // 2, case["width"], (batch,), device=device)
        mask = (torch.arange(case["width"], device=device)[None, :] <= last[:, None])[:, None, None, :]
        ref = torch.nn.functional.scaled_dot_product_attention(
            x.double(), key.double(), value.double(), attn_mask=mask, scale=1.0, enable_gqa=True)

        def packed_sdpa():  # the static engine's decode attention: query heads grouped per KV head, one SDPA
            grouped = x.reshape(batch, kv_heads, heads // kv_heads, dim)
            out = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=mask, scale=1.0)
            return out.reshape(batch, heads, 1, dim)

        impls = {"triton": lambda: triton_attention.decode_attention(x, key, value, mask, 1.0), "eager": packed_sdpa}
        inputs = [x, key, value, mask]
    else:
        cos = torch.randn((*case["x"][:2], width), device=device).to(dtype)
        sin = torch.randn((*case["x"][:2], width), device=device).to(dtype)
        ref = m.apply_rotary_pos_emb(x.double(), cos.double(), sin.double(), unsqueeze_dim=2)
        impls = {"triton": lambda: triton_ops.apply_rotary(x, cos, sin, 2),
                 "torch.compile": lambda: compiled["rope"](x, cos, sin, 2),
                 "eager": lambda: m.apply_rotary_pos_emb(x, cos, sin, unsqueeze_dim=2)}
        inputs = [x, cos, sin]
    moved = sum(t.numel() * t.element_size() for t in inputs) + x.numel() * x.element_size()  # + the output
    return impls, [moved], ref


_COMPILED: dict = {}


def _compiled(fused, backend: str) -> dict:
    """The fused module's functions compiled as it compiles them (fullgraph, dynamic=None)."""
    if backend not in _COMPILED:
        import functools

        import torch
        from transformers.models.gemma4 import modeling_gemma4 as m

        config = torch._dynamo.config  # one graph per shape family, as the fused module allows
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(config, name):
                setattr(config, name, max(getattr(config, name), 64))
        compile_ = functools.partial(torch.compile, backend=backend, dynamic=None, fullgraph=True)
        _COMPILED[backend] = {"rms_norm": compile_(fused.rms_norm), "gelu_tanh_mul": compile_(fused.gelu_tanh_mul),
                              "rope": compile_(m.apply_rotary_pos_emb)}
    return _COMPILED[backend]


def time_call(fn, device: str, repeats: int) -> float:
    """Median microseconds of one call launched alone."""
    if device == "cuda":
        import triton.testing

        return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") * 1000
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def time_in_graph(fn, calls: int = 50, replays: int = 30) -> float:
    """Median microseconds a call inside a CUDA graph of ``calls`` back-to-back calls."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()
    times = []
    for _ in range(replays):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000 / calls)
    return statistics.median(times)


def measure(args, dims: dict, shapes: dict, device: str) -> list[dict]:
    import torch

    dtype = getattr(torch, args.dtype)
    backend = "eager" if SMOKE else "inductor"
    rows = []
    for case in cases(dims, shapes):
        impls, (moved,), ref = build(case, device, dtype, backend)
        shape = "x".join(map(str, case["x"])) + (f" w{case['width']}" if "width" in case else "")
        for name, fn in impls.items():
            out = fn()
            rel = float((out.double() - ref).norm() / ref.norm())
            row = {"kernel": case["kernel"], "case": case["case"], "shape": shape,
                   "impl": name if name != "eager" or case["kernel"] != "decode_attention" else "eager (packed SDPA)",
                   "us/call": round(time_call(fn, device, args.repeats), 2), "us/call in graph": None,
                   "GB/s in graph": None, "rel err": float(f"{rel:.2e}")}
            if device == "cuda":
                try:
                    graph_us = time_in_graph(fn)
                    row["us/call in graph"] = round(graph_us, 2)
                    row["GB/s in graph"] = round(moved / graph_us / 1e3, 1)
                except Exception as error:  # noqa: BLE001  (a kernel that cannot be captured is a result)
                    row["us/call in graph"] = f"capture failed: {type(error).__name__}"
            rows.append(row)
            print(" | ".join(str(row[c]) for c in COLUMNS), file=sys.stderr, flush=True)
    return rows


# --------------------------------------------------------------------------------------------------- cold start
def child(impl: str, shapes_name: str) -> None:
    """One new process: import, then call every case's kernel once (building it), and report the times."""
    started = time.perf_counter()
    import torch

    from ovoz.gemma.kernels import triton_ops  # noqa: F401

    imported = time.perf_counter() - started
    device = "cpu" if SMOKE else "cuda"
    dims, shapes = (TINY, SMOKE_START_SHAPES) if shapes_name == "smoke" else (E4B, E4B_SHAPES)
    backend = "eager" if SMOKE else "inductor"
    first = 0.0
    built = 0
    for case in cases(dims, shapes):
        impls, _, _ = build(case, device, torch.bfloat16, backend)
        if impl not in impls:
            continue
        t0 = time.perf_counter()
        impls[impl]()
        if device == "cuda":
            torch.cuda.synchronize()
        first += time.perf_counter() - t0
        built += 1
    print(json.dumps({"first calls s": round(first, 2), "import s": round(imported, 2), "cases": built}))


def cold_and_warm(impl: str, shapes_name: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ovoz-kernel-cache-") as cache:
        env = {**os.environ, "TRITON_CACHE_DIR": str(Path(cache) / "triton"),
               "TORCHINDUCTOR_CACHE_DIR": str(Path(cache) / "inductor"),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        for run in ("cold", "warm"):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", impl, "--child-shapes", shapes_name]
                                  + (["--smoke"] if SMOKE else []), env=env, capture_output=True, text=True,
                                  check=False)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"the {run} {impl} child failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"impl": impl, "run": run, **result, "process s": round(wall, 2)})
    return rows


E4B_SHAPES = {"decode b1": (1, 1), "decode b128": (128, 1), "prefill 16x330": (16, 330)}
SMOKE_SHAPES = {"decode b4": (4, 1), "prefill 2x10": (2, 10)}
SMOKE_START_SHAPES = {"decode b1": (1, 1)}


def versions() -> dict:
    import torch
    import transformers

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "triton": triton_version, "transformers": transformers.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, Triton's interpreter, tiny shapes")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--repeats", type=int, default=3, help="calls timed on the CPU (--smoke)")
    parser.add_argument("--no-start", action="store_true", help="skip the cold/warm start processes")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OVOZ_RESULTS_DIR", ROOT / "benchmarks" / "results")),
                        help="folder for the JSON")
    parser.add_argument("--child", choices=["triton", "torch.compile"], help=argparse.SUPPRESS)
    parser.add_argument("--child-shapes", default="e4b", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child_shapes)
        return

    import torch

    device = "cpu" if SMOKE else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on the GPU box, or pass --smoke")
    dims, shapes = (TINY, SMOKE_SHAPES) if SMOKE else (E4B, E4B_SHAPES)
    rows = measure(args, dims, shapes, device)
    print(table(rows, COLUMNS))
    start_rows = []
    if not args.no_start:
        for impl in ("triton", "torch.compile"):
            start_rows += cold_and_warm(impl, "smoke" if SMOKE else "e4b")
        print()
        print(table(start_rows, START_COLUMNS))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or 'cpu'})"
    record = {
        "benchmark": "kernels", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": gpu,
        "versions": versions(), "command": " ".join([Path(sys.executable).name, *sys.argv]), "smoke": SMOKE,
        "dtype": args.dtype,
        "tables": {"kernels": {"columns": COLUMNS, "rows": rows},
                   "start": {"columns": START_COLUMNS, "rows": start_rows}},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"kernels-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}{'-smoke' if SMOKE else ''}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"# wrote {path}")


if __name__ == "__main__":
    main()
