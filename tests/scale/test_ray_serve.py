"""ovoz's server as two Ray Serve replicas (a local cluster, CPU, the tiny model) behind one endpoint: the
official ``openai`` client gets from it what it gets from the app of ``create_app`` served directly, and both
replicas answer."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("ray")
pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

MAX_NEW_TOKENS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def settings(tiny_model_dir):
    from ovoz.serve import ServeSettings

    return ServeSettings(host="127.0.0.1", port=_free_port(), base=str(tiny_model_dir), no_adapter=True,
                         device="cpu", dtype="float32", max_new_tokens=MAX_NEW_TOKENS, batch_size=4, warmup=False)


@pytest.fixture(scope="module")
def replicas(ray_cluster, settings):
    """The base URL of two replicas (0.5 CPU each) served by Ray Serve."""
    from ray import serve

    from ovoz.scale.serve import DEPLOYMENT, run_replicas

    run_replicas(settings, 2, gpus_per_replica=0, cpus_per_replica=0.5, blocking=False)
    url = f"http://{settings.host}:{settings.port}"
    deadline = time.monotonic() + 120
    while True:  # serve.run returns once the replicas are up; the proxy may take a moment more
        try:
            if httpx.get(url + "/ready", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the Ray Serve replicas did not get ready"
        time.sleep(0.2)
    yield url
    serve.delete(DEPLOYMENT)
    serve.shutdown()


def test_two_replicas_serve_what_the_app_serves(replicas, settings, tiny_model, clip_22k, clip_16k):
    from fastapi.testclient import TestClient

    from ovoz.scale.serve import REPLICA_HEADER
    from ovoz.serve import create_app

    with TestClient(create_app(settings, transcriber=tiny_model)) as direct_http:
        direct = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=direct_http)
        expected = {}
        for clip in (clip_22k, clip_16k):
            with open(clip, "rb") as audio:
                expected[clip, "json"] = direct.audio.transcriptions.create(model="whisper-1", file=audio).text
            with open(clip, "rb") as audio:
                expected[clip, "srt"] = direct.audio.transcriptions.create(model="whisper-1", file=audio,
                                                                           response_format="srt")
    assert expected[clip_16k, "json"]  # the tiny model's noise, but not nothing

    client = openai.OpenAI(base_url=replicas + "/v1", api_key="unused", max_retries=0, timeout=120)

    def ask(index: int):
        clip = (clip_22k, clip_16k)[index % 2]
        fmt = "srt" if index % 3 == 2 else "json"
        with open(clip, "rb") as audio:
            raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=audio,
                                                                       response_format=fmt)
        parsed = raw.parse()
        return clip, fmt, (parsed if fmt == "srt" else parsed.text), raw.headers.get(REPLICA_HEADER)

    seen: set[str] = set()
    with ThreadPoolExecutor(6) as pool:
        for _ in range(4):  # rounds of 6 concurrent requests until both replicas have answered
            for clip, fmt, text, replica in pool.map(ask, range(6)):
                assert text == expected[clip, fmt]
                seen.add(replica)
            if len(seen) >= 2:
                break
    assert None not in seen and len(seen) == 2, f"replicas that answered: {seen}"

    with open(clip_22k, "rb") as audio:  # OpenAI's streaming events pass through Ray's proxy
        events = list(client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    assert events[-1].type == "transcript.text.done" and events[-1].text == expected[clip_22k, "json"]


def test_serve_run_builder_reads_settings_like_the_environment(monkeypatch):
    """``serve run ovoz.scale.serve:app_builder replicas=3 ...``: arguments parse as OVOZ_* variables do."""
    from ovoz.errors import ConfigError
    from ovoz.scale.serve import app_builder

    monkeypatch.setenv("OVOZ_MAX_NEW_TOKENS", "32")
    app = app_builder({"replicas": "3", "base": "/models/e4b", "batch_size": "64", "warmup": "off",
                       "gpus_per_replica": "1", "cpus_per_replica": "2"})
    deployment = app._bound_deployment
    settings = deployment.init_args[0]
    assert (settings.base, settings.batch_size, settings.warmup, settings.max_new_tokens) == ("/models/e4b", 64,
                                                                                              False, 32)
    assert deployment.num_replicas == 3 and deployment.ray_actor_options == {"num_gpus": 1.0, "num_cpus": 2.0}
    with pytest.raises(ConfigError, match="unknown argument"):
        app_builder({"replica": "2"})
    with pytest.raises(ConfigError, match="(?i)batch_size"):
        app_builder({"batch_size": "many"})
