"""Fused Gemma 4 kernels: same arithmetic as transformers' modules, wired in and out cleanly."""

from __future__ import annotations

import pytest
import torch

import ovoz
import ovoz.gemma.testing
from ovoz.gemma import compat
from ovoz.gemma.kernels import fused
from ovoz.gemma.static_engine import StaticEngine

SYSTEM, USER = ovoz.types.SYSTEM_PROMPT, ovoz.types.USER_PROMPT


@pytest.fixture
def eager_backend(monkeypatch):
    """Trace through torch.compile without code generation (no Triton on CPU)."""
    monkeypatch.setattr(fused, "BACKEND", "eager")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_scale", [True, False])
def test_rms_norm_is_gemma4s(dtype, with_scale):
    from transformers.models.gemma4.modeling_gemma4 import Gemma4RMSNorm

    norm = Gemma4RMSNorm(64, eps=1e-6, with_scale=with_scale)
    if with_scale:
        torch.nn.init.normal_(norm.weight)
    x = torch.randn(3, 5, 64).to(dtype) * 4
    expected = norm(x)
    got = fused.rms_norm(x, norm.weight if with_scale else None, compat.norm_epsilon(norm))
    assert got.dtype == dtype
    assert torch.equal(got, expected)


def test_gelu_mul_is_the_mlps(tiny_model):
    mlp = tiny_model.model.model.language_model.layers[0].mlp
    assert compat.is_gelu_tanh(mlp.act_fn)
    gate, up = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    assert torch.equal(fused.gelu_tanh_mul(gate, up), mlp.act_fn(gate) * up)


def test_kernels_go_on_one_model_instance_and_come_off(tiny_model, eager_backend):
    """Instance forwards only: transformers' classes and module functions never change, and neither does another
    model of the same classes."""
    from transformers.models.gemma4 import modeling_gemma4 as m

    model = tiny_model.model
    other = ovoz.gemma.testing.build_random_model(ovoz.gemma.testing.model_config(tiny_model.processor.tokenizer))
    classes = (m.Gemma4RMSNorm.forward, m.Gemma4TextMLP.forward, m.apply_rotary_pos_emb)
    norms = [mod for mod in model.modules() if type(mod).__name__ == "Gemma4RMSNorm"]
    mlps = [mod for mod in model.modules() if type(mod).__name__ == "Gemma4TextMLP"]
    with fused.FusedKernels(model) as kernels:
        with fused.FusedKernels(model):  # re-entrant on the same model
            pass
        assert all("forward" in vars(mod) for mod in norms + mlps)  # still on after the inner exit
        assert len(kernels.modules) == len(norms) + len(mlps)
        assert not any("forward" in vars(mod) for mod in other.modules())
        assert (m.Gemma4RMSNorm.forward, m.Gemma4TextMLP.forward, m.apply_rotary_pos_emb) == classes
    assert not any("forward" in vars(mod) for mod in norms + mlps)
    assert (m.Gemma4RMSNorm.forward, m.Gemma4TextMLP.forward, m.apply_rotary_pos_emb) == classes


def test_not_available_without_cuda():
    assert not fused.available(torch.device("cpu"))


def test_engine_with_fused_kernels_returns_the_same_tokens(tiny_model, clips, eager_backend):
    audio = [ovoz.load_audio(c["path"]) for c in clips[:4]]
    plain = StaticEngine(tiny_model.model, tiny_model.processor, slots=3, max_new_tokens=12, fused_kernels=False)
    fast = StaticEngine(tiny_model.model, tiny_model.processor, slots=3, max_new_tokens=12, fused_kernels=True)
    expected = plain.run(audio, max_new_tokens=12, system=SYSTEM, user=USER)
    got = fast.run(audio, max_new_tokens=12, system=SYSTEM, user=USER)
    assert [g.token_ids for g in got] == [e.token_ids for e in expected]
    assert [g.avg_logprob for g in got] == pytest.approx([e.avg_logprob for e in expected], abs=1e-5)


def test_training_gradients_are_unchanged(tiny_model, eager_backend):
    """Forward and backward through the patched modules give the original loss and gradients."""
    model = tiny_model.model
    ids = torch.randint(10, 200, (2, 9))

    layer = model.model.language_model.layers[0]
    watched = [layer.mlp.up_proj.weight, layer.input_layernorm.weight, layer.self_attn.q_norm.weight]
    flags = [p.requires_grad for p in watched]

    def loss_and_grad():
        for p in watched:
            p.requires_grad_(True)
            p.grad = None
        out = model.model.language_model(input_ids=ids)
        loss = out.last_hidden_state.float().pow(2).mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in watched]

    try:
        expected = loss_and_grad()
        with fused.FusedKernels(model):
            got = loss_and_grad()
    finally:
        for p, flag in zip(watched, flags):
            p.requires_grad_(flag)
            p.grad = None
    assert torch.allclose(got[0], expected[0], rtol=1e-6)
    for a, b in zip(got[1], expected[1]):
        assert b.abs().sum() > 0
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_the_option_reaches_the_engine(tiny_model_dir, clip_22k, eager_backend):
    on = ovoz.load(tiny_model_dir, adapter=None, device="cpu", dtype="float32", engine="static", fused_kernels=True)
    off = ovoz.load(tiny_model_dir, adapter=None, device="cpu", dtype="float32", engine="static", fused_kernels=False)
    auto = ovoz.load(tiny_model_dir, adapter=None, device="cpu", dtype="float32", engine="static")
    options = ovoz.TranscribeOptions(max_new_tokens=8, batch_size=2)
    texts = []
    for transcriber, expected in ((on, True), (off, False), (auto, False)):  # auto: no CUDA here
        texts.append(transcriber.transcribe(clip_22k, options=options).text)
        engines = list(transcriber.decoder._static.values())
        assert engines and all(engine._fused_now is expected for engine in engines)
    assert texts[0] == texts[1] == texts[2]


def test_auto_uses_the_triton_kernels_wherever_they_run(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(fused, "BACKEND", "triton")
    monkeypatch.setattr(fused, "available", lambda device: True)
    assert fused.choose(None, cuda, 1.0)
    assert not fused.choose(False, cuda, 1.0)
    monkeypatch.setattr(fused, "available", lambda device: False)
    assert not fused.choose(None, cuda, 10 * fused.AUTO_MIN_AUDIO_S)
    assert not fused.available(torch.device("cpu"))


def test_the_triton_backend_hands_out_triton_kernels():
    from ovoz.gemma.kernels import triton_attention, triton_ops

    kernels = fused._compiled("triton")
    assert kernels["rms_norm"] is triton_ops.rms_norm
    assert kernels["gelu_tanh_mul"] is triton_ops.gelu_tanh_mul
    assert kernels["decode_attention"] is triton_attention.decode_attention


def test_auto_compiles_for_long_runs_or_when_already_compiled(monkeypatch):
    monkeypatch.setattr(fused, "BACKEND", "inductor")
    monkeypatch.setattr(fused, "available", lambda device: True)
    monkeypatch.setattr(fused, "_warm", set())
    cuda = torch.device("cuda")
    assert not fused.choose(None, cuda, 600.0)
    assert fused.choose(None, cuda, fused.AUTO_MIN_AUDIO_S)
    assert not fused.choose(False, cuda, fused.AUTO_MIN_AUDIO_S)
    assert fused.choose(True, cuda, 1.0)
    fused._warm.add(fused.BACKEND)  # what a finished fused run leaves behind
    assert fused.choose(None, cuda, 1.0)
    monkeypatch.setattr(fused, "available", lambda device: False)
    assert not fused.choose(None, torch.device("cpu"), 10 * fused.AUTO_MIN_AUDIO_S)


def test_a_finished_run_marks_the_kernels_compiled(monkeypatch, eager_backend, tiny_model):
    monkeypatch.setattr(fused, "_warm", set())
    assert not fused.is_warm()
    with pytest.raises(RuntimeError):
        with fused.FusedKernels(tiny_model.model):
            raise RuntimeError("failed before anything ran")
    assert not fused.is_warm()
    with fused.FusedKernels(tiny_model.model):
        pass
    assert fused.is_warm()


def test_cli_flag():
    from ovoz.cli import build_parser
    from ovoz.commands.common import fused_kernels_from_args

    parser = build_parser()
    assert fused_kernels_from_args(parser.parse_args(["transcribe", "a.wav"])) is None
    assert fused_kernels_from_args(parser.parse_args(["transcribe", "a.wav", "--fused-kernels", "on"])) is True
    assert fused_kernels_from_args(parser.parse_args(["eval", "x.jsonl", "--fused-kernels", "off"])) is False


def test_a_long_job_compiles_even_when_each_call_is_short(tiny_model_dir, clip_22k, eager_backend, monkeypatch):
    """The runner and the evaluation announce the whole job's audio; auto then compiles for a job of hours."""
    monkeypatch.setattr(fused, "available", lambda device: True)
    monkeypatch.setattr(fused, "_warm", set())
    transcriber = ovoz.load(tiny_model_dir, adapter=None, device="cpu", dtype="float32", engine="static")
    options = ovoz.TranscribeOptions(max_new_tokens=4, batch_size=2)
    transcriber.transcribe(clip_22k, options=options)
    assert [e._fused_now for e in transcriber.decoder._static.values()] == [False]
    transcriber.expect_audio(fused.AUTO_MIN_AUDIO_S)
    transcriber.transcribe(clip_22k, options=options)
    assert [e._fused_now for e in transcriber.decoder._static.values()] == [True]

