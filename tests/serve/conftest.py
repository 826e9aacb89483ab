"""A running server (uvicorn in a thread, 127.0.0.1, a free port) over the tiny random Gemma 4 model."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

MAX_NEW_TOKENS = 8
BATCH = 4


@contextlib.contextmanager
def serve_app(app, *, wait_ready: bool = True) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields the base URL; stops it afterwards."""
    import httpx
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    while wait_ready and httpx.get(url + "/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server's model did not get ready")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def options():
    import ovoz

    return ovoz.TranscribeOptions(max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH)


@pytest.fixture(scope="module")
def settings():
    from ovoz.serve import ServeSettings

    return ServeSettings(max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH, warmup=False)


@pytest.fixture(scope="module")
def server(tiny_model, settings):
    """The base URL of a server over the session's tiny model."""
    from ovoz.serve import create_app

    app = create_app(settings, transcriber=tiny_model)
    with serve_app(app) as url:
        yield url


@pytest.fixture(scope="session")
def running():
    """``with running(app) as url:`` serves an app of the test's own (see :func:`serve_app`)."""
    return serve_app


@pytest.fixture()
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)
