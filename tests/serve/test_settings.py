"""Settings from defaults, OVOZ_* variables and flags; ``ovoz serve`` end to end as a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovoz.errors import ConfigError
from ovoz.serve.settings import ENVIRONMENT, ServeSettings


def test_environment_then_overrides():
    environ = {"OVOZ_PORT": "9001", "OVOZ_API_KEYS": "a, b,,", "OVOZ_BATCH_SIZE": "64", "OVOZ_WARMUP": "off",
               "OVOZ_TIMEOUT_PER_AUDIO_S": "0.5", "OVOZ_FUSED_KERNELS": "on", "OVOZ_MAX_UPLOAD_BYTES": ""}
    settings = ServeSettings.from_env(environ, batch_size=16, host=None)
    assert (settings.port, settings.api_keys, settings.batch_size, settings.warmup) == (9001, ("a", "b"), 16, False)
    assert settings.fused_kernels is True and settings.max_upload_bytes == 25 * 2**20
    assert settings.timeout_for(100) == pytest.approx(60 + 50)
    assert set(ENVIRONMENT) >= {"OVOZ_PORT", "OVOZ_API_KEYS", "OVOZ_MAX_UPLOAD_BYTES", "OVOZ_BATCH_SIZE",
                                "OVOZ_MAX_REQUESTS", "OVOZ_TIMEOUT_S", "OVOZ_BASE", "OVOZ_ADAPTER", "OVOZ_DEVICE"}


@pytest.mark.parametrize("environ, field", [({"OVOZ_PORT": "eighty"}, "OVOZ_PORT"),
                                            ({"OVOZ_WARMUP": "maybe"}, "OVOZ_WARMUP"),
                                            ({"OVOZ_BATCH_SIZE": "0"}, "OVOZ_BATCH_SIZE")])
def test_bad_values_name_their_variable(environ, field):
    with pytest.raises(ConfigError, match=field):
        ServeSettings.from_env(environ)


def test_flags_win_over_the_environment():
    from ovoz.cli import build_parser
    from ovoz.commands.serve import settings_from_args

    args = build_parser().parse_args(["serve", "--port", "8123", "--api-key", "k1", "--api-key", "k2",
                                      "--max-upload-mb", "2", "--base", "/models/e4b", "--no-warmup"])
    settings = settings_from_args(args, {"OVOZ_PORT": "9000", "OVOZ_BASE": "/elsewhere", "OVOZ_DEVICE": "cpu",
                                         "OVOZ_ADAPTER": "/adapters/mine"})
    assert settings.port == 8123 and settings.api_keys == ("k1", "k2") and settings.max_upload_bytes == 2 * 2**20
    assert settings.base == "/models/e4b" and settings.device == "cpu" and settings.adapter == "/adapters/mine"
    assert settings.warmup is False
    defaults = settings_from_args(build_parser().parse_args(["serve"]), {"OVOZ_BASE": "/elsewhere"})
    assert defaults.base == "/elsewhere" and defaults.port == 8000 and defaults.api_keys == ()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ovoz_serve_runs_as_a_process(tiny_model_dir, clip_22k, tmp_path):
    httpx = pytest.importorskip("httpx")
    openai = pytest.importorskip("openai")
    port = free_port()
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "OVOZ_API_KEYS": "secret", "HF_HUB_OFFLINE": "1", "OVOZ_MAX_NEW_TOKENS": "6",
           "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "ovoz.cli", "serve", "--base", str(tiny_model_dir), "--no-adapter", "--device", "cpu",
         "--dtype", "float32", "--local-files-only", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(url + "/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "ovoz serve did not get ready"
            time.sleep(0.2)
        client = openai.OpenAI(base_url=url + "/v1", api_key="secret", max_retries=0)
        with open(clip_22k, "rb") as file:
            result = client.audio.transcriptions.create(file=file, model="whisper-1", response_format="verbose_json")
        assert result.segments and all(len(s.tokens) <= 6 for s in result.segments)
        assert httpx.get(url + "/v1/models").status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0, process.stdout.read()
