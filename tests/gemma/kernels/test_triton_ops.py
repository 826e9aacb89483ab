"""The Triton kernels compute transformers' Gemma 4 arithmetic: checked against its own modules in float64.

On this CPU-only machine the kernels run through Triton's interpreter, which must be switched on before the
kernels are defined, so the checks run in a child process (``TRITON_INTERPRET=1``); on a GPU the same checks run
on CUDA (``-m gpu``). Every check draws fresh random inputs, poisons the output with NaN first and measures
``|out - ref| / |ref|`` against the float64 result of transformers' code on the same (upcast) inputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

SRC = Path(__file__).resolve().parents[3] / "src"

FALLBACKS = {"triton_ops": ("_rms_norm_torch", "_gelu_tanh_mul_torch", "_apply_rotary_torch"),
             "triton_attention": ("_decode_attention_torch",)}
"""Each kernel module's torch arithmetic for the cases the kernels do not cover."""

TOLERANCE = {"float32": 1e-5, "bfloat16": 5e-3}  # attention: twice these
"""float32 arithmetic lands near 1e-7 (attention near 1e-6: its peaked softmax). bfloat16 outputs carry their own
rounding (about 1.7e-3 rounded to nearest on a GPU; about 3.3e-3 in the interpreter, which truncates); attention
also rounds its probabilities to bfloat16 before the value product on a GPU, as SDPA's fused kernels do."""


# ------------------------------------------------------------------------------------------- the checks
def _rel(out, ref) -> float:
    return float((out.double() - ref).norm() / ref.norm())


def _poisoned(shape, dtype, device):
    import torch

    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def _record(results, name, out, ref, returned=None, poison=None) -> None:
    import torch

    results.append({
        "name": name,
        "dtype": str(out.dtype).removeprefix("torch."),
        "rel": _rel(out, ref),
        "finite": bool(torch.isfinite(out).all()),  # every poisoned element was written
        "same_tensor": returned is None or returned is poison,
        "shape_ok": tuple(out.shape) == tuple(ref.shape),
    })


def _rms_norm_64(x, weight, eps):
    """Gemma4RMSNorm's formula in float64 (the module itself computes in float32 whatever its dtype)."""
    x = x.double().cpu()
    out = x * (x.pow(2).mean(-1, keepdim=True) + eps) ** -0.5
    return out if weight is None else out * weight.double().cpu()


def check_rms_norm(device: str, generator) -> list[dict]:
    import torch
    from transformers.models.gemma4.modeling_gemma4 import Gemma4RMSNorm

    from ovoz.gemma.kernels import triton_ops

    results: list[dict] = []
    cases = [  # (shape, with_scale, weight dtype or None = x's)
        ((7, 2560), True, None), ((2, 3, 8, 256), True, None), ((1, 1, 8, 512), True, None),
        ((5, 2, 96), False, None), ((3, 1024), True, torch.float32), ((2, 20000), True, None),  # two passes
        ((1, 2560), True, None),
    ]
    for dtype in (torch.float32, torch.bfloat16):
        for shape, with_scale, w_dtype in cases:
            eps = float(torch.empty(()).uniform_(1e-6, 1e-3, generator=generator))
            x = (torch.randn(shape, generator=generator) * 3).to(dtype).to(device)
            weight = torch.randn(shape[-1], generator=generator).to(w_dtype or dtype).to(device) if with_scale else None
            ref = _rms_norm_64(x, weight, eps)
            # the float64 formula is transformers' module (run in float32 on the same values)
            norm = Gemma4RMSNorm(shape[-1], eps=eps, with_scale=with_scale)
            if with_scale:
                norm.weight.data = weight.float().cpu()
            results.append({"name": f"rms_norm {shape}: the formula is Gemma4RMSNorm's",
                            "equal": _rel(norm(x.float().cpu()), ref) < 1e-6})
            poison = _poisoned(shape, dtype, device)
            got = triton_ops.rms_norm(x, weight, eps, out=poison)
            _record(results, f"rms_norm {shape} scale={with_scale} w={w_dtype}", got.cpu(), ref, got, poison)
            fresh = triton_ops.rms_norm(x, weight, eps)
            results.append({"name": f"rms_norm {shape} out= and fresh agree", "equal": bool(torch.equal(fresh, got))})
        # a row-strided view (a slice of a wider tensor) and a transposed one (copied first)
        wide = torch.randn(6, 300, generator=generator).to(dtype).to(device)
        for name, x in (("sliced", wide[:, :256]), ("transposed", wide[:, :256].t())):
            weight = torch.randn(x.shape[-1], generator=generator).to(dtype).to(device)
            got = triton_ops.rms_norm(x, weight, 1e-6)
            _record(results, f"rms_norm {name}", got.cpu(), _rms_norm_64(x, weight, 1e-6))
    return results


def check_gelu_tanh_mul(device: str, generator) -> list[dict]:
    import torch
    from transformers.activations import ACT2FN

    from ovoz.gemma.kernels import triton_ops

    act = ACT2FN["gelu_pytorch_tanh"]
    results: list[dict] = []
    for dtype in (torch.float32, torch.bfloat16):
        for shape in ((1, 1, 10240), (3, 2, 2560), (7, 300), (4, 5, 3, 33)):
            gate = (torch.randn(shape, generator=generator) * 4).to(dtype).to(device)  # reaches both tails
            up = torch.randn(shape, generator=generator).to(dtype).to(device)
            ref = act(gate.double().cpu()) * up.double().cpu()
            poison = _poisoned(shape, dtype, device)
            got = triton_ops.gelu_tanh_mul(gate, up, out=poison)
            _record(results, f"gelu_tanh_mul {shape}", got.cpu(), ref, got, poison)
        wide = (torch.randn(9, 700, generator=generator) * 4).to(dtype).to(device)
        gate, up = wide[:, :512], wide[:, 100:612]  # row-strided views of one buffer
        got = triton_ops.gelu_tanh_mul(gate, up)
        _record(results, "gelu_tanh_mul row-strided", got.cpu(), act(gate.double().cpu()) * up.double().cpu())
    return results


def check_apply_rotary(device: str, generator) -> list[dict]:
    import torch
    from transformers.models.gemma4 import modeling_gemma4

    from ovoz.gemma.kernels import triton_ops

    original = modeling_gemma4.apply_rotary_pos_emb
    results: list[dict] = []
    for dtype in (torch.float32, torch.bfloat16):
        cases = [  # (x shape, cos shape, unsqueeze_dim)
            ((2, 5, 8, 256), (2, 5, 256), 2),  # the text model's call: [b, seq, heads, dim]
            ((1, 1, 8, 512), (1, 1, 512), 2),  # a batch-1 decode step of a global layer
            ((3, 1, 2, 256), (3, 1, 256), 2),
            ((2, 4, 6, 64), (2, 6, 64), 1),  # [b, heads, seq, dim], the default unsqueeze_dim
            ((4, 96), (96,), 0),  # 2-D x, cos broadcast over rows
        ]
        for x_shape, c_shape, dim in cases:
            x = torch.randn(x_shape, generator=generator).to(dtype).to(device)
            cos = torch.randn(c_shape, generator=generator).to(dtype).to(device)  # halves differ on purpose
            sin = torch.randn(c_shape, generator=generator).to(dtype).to(device)
            ref = original(x.double().cpu(), cos.double().cpu(), sin.double().cpu(), unsqueeze_dim=dim)
            poison = _poisoned(x_shape, dtype, device)
            got = triton_ops.apply_rotary(x, cos, sin, unsqueeze_dim=dim, out=poison)
            _record(results, f"apply_rotary {x_shape} unsqueeze_dim={dim}", got.cpu(), ref, got, poison)
        # apply_multidimensional_rope hands it column slices (row-strided views): patched in, against the original
        x = torch.randn(2, 6, 4, 64, generator=generator).to(dtype).to(device)
        cos = torch.randn(2, 6, 64, generator=generator).to(dtype).to(device)
        sin = torch.randn(2, 6, 64, generator=generator).to(dtype).to(device)
        positions = torch.zeros(2, 6, 2, dtype=torch.long, device=device)
        ref = modeling_gemma4.apply_multidimensional_rope(x.double().cpu(), cos.double().cpu(), sin.double().cpu(),
                                                          positions.cpu())
        modeling_gemma4.apply_rotary_pos_emb = triton_ops.apply_rotary
        try:
            got = modeling_gemma4.apply_multidimensional_rope(x, cos, sin, positions)
        finally:
            modeling_gemma4.apply_rotary_pos_emb = original
        _record(results, "apply_rotary via apply_multidimensional_rope", got.cpu(), ref)
    return results


def check_decode_attention(device: str, generator) -> list[dict]:
    """One query position, 4 query heads per KV head (E4B), keys/values as views of a longer cache, against SDPA
    (``enable_gqa``) in float64; cases with and without the split over key ranges."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    from ovoz.gemma.kernels import triton_attention

    results: list[dict] = []
    cases = [  # (batch, kv heads, width, dim, mask)
        (1, 2, 300, 256, "bool"), (3, 2, 70, 512, "additive"), (2, 2, 40, 64, None), (2, 1, 130, 32, "per-head"),
    ]
    for dtype in (torch.float32, torch.bfloat16):
        for batch, kv_heads, width, dim, kind in cases:
            heads = 4 * kv_heads
            query = torch.randn(batch, heads, 1, dim, generator=generator).to(dtype).to(device)
            cache = torch.randn(2, batch, kv_heads, width + 17, dim, generator=generator).to(dtype).to(device)
            key, value = cache[0, :, :, :width], cache[1, :, :, :width]
            last = torch.randint(width // 2, width, (batch,), generator=generator)  # each row's newest position
            allowed = (torch.arange(width)[None, :] <= last[:, None])[:, None, None, :]
            if kind == "per-head":
                allowed = allowed & (torch.rand(batch, heads, 1, width, generator=generator) < 0.7)
                allowed[..., 0] = True
            mask = {None: None, "bool": allowed, "per-head": allowed,
                    "additive": torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)}[kind]
            scale = float(torch.empty(()).uniform_(0.05, 1.0, generator=generator))  # Gemma 4 passes 1.0
            ref_mask = mask if mask is None or mask.dtype == torch.bool else mask.double()
            ref = sdpa(query.double().cpu(), key.double().cpu(), value.double().cpu(),
                       attn_mask=None if ref_mask is None else ref_mask.cpu(), scale=scale, enable_gqa=True)
            mask = None if mask is None else mask.to(device)
            poison = _poisoned((batch, heads, 1, dim), dtype, device)
            got = triton_attention.decode_attention(query, key, value, mask, scale, out=poison)
            _record(results, f"decode_attention b{batch} kv{kv_heads} w{width} d{dim} {kind}", got.cpu(), ref, got,
                    poison)
        # a query that sees no key gets zeros (the other rows are unaffected)
        query = torch.randn(2, 8, 1, 64, generator=generator).to(dtype).to(device)
        key, value = (torch.randn(2, 2, 50, 64, generator=generator).to(dtype).to(device) for _ in range(2))
        mask = torch.ones(2, 1, 1, 50, dtype=torch.bool)
        mask[1] = False
        got = triton_attention.decode_attention(query, key, value, mask.to(device))
        ref = sdpa(query[:1].double().cpu(), key[:1].double().cpu(), value[:1].double().cpu(), enable_gqa=True)
        results.append({"name": "decode_attention: a row without keys is zeros",
                        "equal": bool((got[1] == 0).all()) and _rel(got[:1].cpu(), ref) < TOLERANCE["bfloat16"]})
    return results


def check_fallbacks(device: str, generator) -> list[dict]:
    """Where the kernels do not apply the wrappers run transformers' arithmetic (autograd, odd rotary width)."""
    import torch

    from ovoz.gemma.kernels import triton_ops

    x = torch.randn(3, 64, generator=generator, device="cpu").to(device).requires_grad_()
    w = torch.randn(64, generator=generator).to(device)
    y = triton_ops.rms_norm(x, w, 1e-6)
    odd = torch.randn(2, 3, 7, generator=generator).to(device)
    cos = torch.randn(2, 3, 7, generator=generator).to(device)
    sin = torch.randn(2, 3, 7, generator=generator).to(device)
    from transformers.models.gemma4.modeling_gemma4 import apply_rotary_pos_emb

    return [
        {"name": "autograd falls back", "equal": y.grad_fn is not None},
        {"name": "odd rotary width falls back",
         "equal": bool(torch.equal(triton_ops.apply_rotary(odd, cos, sin, 0), apply_rotary_pos_emb(odd, cos, sin, 0)))},
        {"name": "available", "equal": triton_ops.available(device)},
    ]


def run_checks(device: str, seed: int) -> list[dict]:
    import torch

    from ovoz.gemma.kernels import triton_attention, triton_ops

    modules = {"triton_ops": triton_ops, "triton_attention": triton_attention}
    generator = torch.Generator().manual_seed(seed)
    fallbacks = {(module, name): getattr(modules[module], name) for module, names in FALLBACKS.items() for name in names}

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel check fell back to torch arithmetic")

    rows: list[dict] = []
    try:  # the kernel checks must run the kernels
        for module, name in fallbacks:
            setattr(modules[module], name, refuse)
        for check in (check_rms_norm, check_gelu_tanh_mul, check_apply_rotary, check_decode_attention):
            rows += check(device, generator)
    finally:
        for (module, name), function in fallbacks.items():
            setattr(modules[module], name, function)
    return rows + check_fallbacks(device, generator)


# ------------------------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def interpreted() -> list[dict]:
    """All checks, run once on the CPU under Triton's interpreter in a child process."""
    seed = int.from_bytes(os.urandom(4), "little")
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, __file__, "cpu", str(seed)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_all(rows: list[dict], prefix: str) -> None:
    chosen = [row for row in rows if row["name"].startswith(prefix)]
    assert chosen, f"no check named {prefix}"
    for row in chosen:
        if "equal" in row:
            assert row["equal"], row
            continue
        assert row["finite"] and row["same_tensor"] and row["shape_ok"], row
        tolerance = TOLERANCE[row["dtype"]] * (2 if row["name"].startswith("decode_attention") else 1)
        assert row["rel"] < tolerance, row


@pytest.mark.parametrize("kernel", ["rms_norm", "gelu_tanh_mul", "apply_rotary", "decode_attention"])
def test_kernel_matches_transformers_interpreted(interpreted, kernel):
    _assert_all(interpreted, kernel)


def test_fallbacks_and_availability_interpreted(interpreted):
    for name in ("autograd falls back", "odd rotary width falls back", "available"):
        _assert_all(interpreted, name)


def test_unavailable_without_interpreter_on_cpu():
    """Without the interpreter the CPU is not a Triton device; the wrappers still compute (torch arithmetic)."""
    import torch

    from ovoz.gemma.kernels import triton_ops

    if triton_ops.INTERPRET:
        pytest.skip("this process runs Triton's interpreter")
    assert not triton_ops.available("cpu")
    x, w = torch.randn(4, 32), torch.randn(32)
    expected = torch.nn.functional.rms_norm(x, (32,), eps=1e-6) * w
    torch.testing.assert_close(triton_ops.rms_norm(x, w, 1e-6), expected)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "kernel", ["rms_norm", "gelu_tanh_mul", "apply_rotary", "decode_attention", "autograd", "odd", "available"]
)
def test_kernel_matches_transformers_on_cuda(kernel):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _assert_all(run_checks("cuda", int.from_bytes(os.urandom(4), "little")), kernel)


@pytest.mark.gpu
def test_kernels_capture_in_a_cuda_graph_and_replay_on_new_inputs():
    """Captured once, replayed after the inputs change in place: the outputs follow (no host sync in capture)."""
    import torch

    from ovoz.gemma.kernels import triton_attention, triton_ops

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    dt = torch.bfloat16
    x, w = torch.randn(4, 1, 2560, device="cuda", dtype=dt), torch.randn(2560, device="cuda", dtype=dt)
    gate, up = torch.randn(4, 1, 10240, device="cuda", dtype=dt), torch.randn(4, 1, 10240, device="cuda", dtype=dt)
    q = torch.randn(4, 1, 8, 512, device="cuda", dtype=dt)
    cos, sin = torch.randn(4, 1, 512, device="cuda", dtype=dt), torch.randn(4, 1, 512, device="cuda", dtype=dt)
    query = torch.randn(4, 8, 1, 256, device="cuda", dtype=dt)
    key, value = (torch.randn(4, 2, 700, 256, device="cuda", dtype=dt) for _ in range(2))
    mask = torch.rand(4, 1, 1, 700, device="cuda") < 0.8

    def step():
        return (triton_ops.rms_norm(x, w, 1e-6), triton_ops.gelu_tanh_mul(gate, up),
                triton_ops.apply_rotary(q, cos, sin, 2), triton_attention.decode_attention(query, key, value, mask, 1.0))

    step()  # build the kernels outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    for t in (x, gate, up, q, query, key, value):
        t.normal_()
    graph.replay()
    for got, expected in zip(captured, step()):
        assert torch.equal(got, expected)


if __name__ == "__main__":  # the child process of the ``interpreted`` fixture
    import warnings

    warnings.simplefilter("ignore")  # numpy's overflow warnings from exp in the interpreter's tails
    sys.path.insert(0, str(SRC))
    print(json.dumps(run_checks(sys.argv[1], int(sys.argv[2]))))
