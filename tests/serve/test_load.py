"""Many clients at once on loopback: every request gets its own answer and none is lost; clients that leave
withdraw their chunks."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import numpy as np
import pytest
import soundfile as sf

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

CLIENTS = 50
REQUESTS_PER_CLIENT = 2


def test_fifty_concurrent_clients_each_get_their_own_answer(server, tiny_model, clips, options):
    paths = [c["path"] for c in clips]
    expected = {path: tiny_model.transcribe(path, options=options).text for path in paths}
    assert len(set(expected.values())) > 1  # distinct answers, so a swapped answer would show

    def client_session(index: int) -> list[tuple[str, str]]:
        client = openai.OpenAI(base_url=server + "/v1", api_key="x", max_retries=0, timeout=300)
        answers = []
        for k in range(REQUESTS_PER_CLIENT):
            path = paths[(index * REQUESTS_PER_CLIENT + k) % len(paths)]
            with open(path, "rb") as file:
                fmt = "text" if k % 2 else "json"
                result = client.audio.transcriptions.create(file=file, model="whisper-1", response_format=fmt)
            answers.append((path, result.removesuffix("\n") if fmt == "text" else result.text))
        return answers

    before = _transcriptions_ok(server)
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client_session, i) for i in range(CLIENTS)]
        done, not_done = concurrent.futures.wait(futures, timeout=600)
    assert not not_done, f"{len(not_done)} clients did not finish within the bound"
    answers = [answer for future in futures for answer in future.result()]
    assert len(answers) == CLIENTS * REQUESTS_PER_CLIENT
    wrong = [(path, got) for path, got in answers if got != expected[path]]
    assert not wrong, f"{len(wrong)} answers differ from the offline transcripts, e.g. {wrong[0]}"
    assert _transcriptions_ok(server) - before == CLIENTS * REQUESTS_PER_CLIENT
    assert httpx.get(server + "/health").status_code == 200


def _transcriptions_ok(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith('ovoz_requests_total{endpoint="/v1/audio/transcriptions",status="200"}'):
            return float(line.split()[-1])
    return 0.0


class GatedTranscriber:
    """The tiny model behind a gate: each batch waits until the test opens it (no timing in the test)."""

    def __init__(self, model) -> None:
        self.model = model
        self.info = model.info
        self.processor = model.processor
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches = 0

    def generate_clips(self, clips, options, **kwargs):
        self.batches += 1
        self.entered.set()
        self.gate.wait(60)
        return self.model.generate_clips(clips, options, **kwargs)


@pytest.fixture()
def long_wav(tiny_model, clips, tmp_path):
    audio = np.concatenate([tiny_model._decode(c["path"], None).samples for c in clips] * 2)
    sf.write(tmp_path / "long.wav", audio, 16000)
    return tmp_path / "long.wav"


def wait_until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_disconnects_withdraws_its_chunks(tiny_model, settings, long_wav, running, stream):
    from ovoz.serve import create_app

    gated = GatedTranscriber(tiny_model)
    app = create_app(settings.replace(batch_size=1), transcriber=gated)
    service = app.state.service
    with running(app) as url:
        data = {"model": "w", "stream": "true" if stream else "false"}
        files = {"file": ("long.wav", long_wav.read_bytes())}

        def leave():
            if stream:  # the events' headers come at once; the client closes before any event
                with httpx.Client(timeout=120) as client:
                    with client.stream("POST", url + "/v1/audio/transcriptions", data=data, files=files) as response:
                        assert response.status_code == 200
                        assert counted.wait(60)
            else:  # the client stops waiting (its read timeout) while the engine holds the first chunk
                with pytest.raises(httpx.ReadTimeout):
                    httpx.post(url + "/v1/audio/transcriptions", data=data, files=files,
                               timeout=httpx.Timeout(60, read=3.0))

        counted = threading.Event()
        leaving = threading.Thread(target=leave)
        leaving.start()
        assert gated.entered.wait(60)
        waiting = service.queue.n_pending
        counted.set()
        assert waiting >= 2  # a long upload: several chunks wait behind the one in the engine
        leaving.join(60)
        assert wait_until(lambda: service.queue.n_pending == 0), "the chunks were not withdrawn"
        gated.gate.set()
        assert wait_until(lambda: service.in_flight == 0)
        assert gated.batches == 1  # only the chunk already in the engine was decoded
        with open(long_wav, "rb") as file:  # the server goes on serving
            ok = httpx.post(url + "/v1/audio/transcriptions", data={"model": "w"}, files={"file": file}, timeout=120)
        assert ok.status_code == 200 and gated.batches == 1 + waiting + 1
