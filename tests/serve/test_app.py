"""The server through the official ``openai`` client (and plain httpx where the client cannot send the request):
every response format against the same clip transcribed offline, streaming events, errors, auth, probes, metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")


@pytest.fixture(scope="module")
def offline(tiny_model, clips, options):
    """Offline transcripts of the real clips with the server's options: what every answer must equal."""
    return {clip["path"]: tiny_model.transcribe(clip["path"], options=options) for clip in clips[:3]}


def words(text: str) -> list[str]:
    return text.split()


def test_json_and_text_equal_the_offline_transcript(client, offline):
    for path, expected in offline.items():
        with open(path, "rb") as file:
            result = client.audio.transcriptions.create(file=file, model="whisper-1")
        assert result.text == expected.text
        assert result.usage.type == "duration" and result.usage.seconds == pytest.approx(expected.duration_s)
        with open(path, "rb") as file:
            text = client.audio.transcriptions.create(file=file, model="whisper-1", response_format="text")
        assert text == expected.text + "\n"


def test_verbose_json_has_the_offline_segments(client, offline):
    path, expected = next(iter(offline.items()))
    with open(path, "rb") as file:
        result = client.audio.transcriptions.create(file=file, model="ovoz-uz", response_format="verbose_json",
                                                    timestamp_granularities=["segment"], language="uz")
    assert result.language == "uzbek" and result.duration == pytest.approx(expected.duration_s)
    assert result.text == expected.text
    assert [(s.id, s.start, s.end, s.text) for s in result.segments] == [
        (s.id, s.start_s, s.end_s, s.text) for s in expected.segments]
    for got, want in zip(result.segments, expected.segments):
        assert got.avg_logprob == pytest.approx(want.avg_logprob, abs=1e-4)
        assert len(got.tokens) == want.n_tokens
    assert result.usage.type == "duration"


def test_srt_and_vtt_parse_with_independent_parsers(client, offline, tmp_path):
    path, expected = next(iter(offline.items()))
    with open(path, "rb") as file:
        body = client.audio.transcriptions.create(file=file, model="whisper-1", response_format="srt")
    cues = list(srt.parse(body))
    assert cues, body
    assert words(" ".join(c.content for c in cues)) == words(expected.text)
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    assert cues[-1].end.total_seconds() <= expected.duration_s + 1e-3

    with open(path, "rb") as file:
        body = client.audio.transcriptions.create(file=file, model="whisper-1", response_format="vtt")
    (tmp_path / "out.vtt").write_text(body, encoding="utf-8")
    captions = webvtt.read(str(tmp_path / "out.vtt"))
    assert len(captions) == len(cues)
    assert words(" ".join(c.text for c in captions)) == words(expected.text)
    assert all(a.end_in_seconds <= b.start_in_seconds for a, b in zip(captions, captions[1:]))


def test_stream_sends_delta_events_then_done(client, offline):
    for path, expected in offline.items():
        with open(path, "rb") as file:
            events = list(client.audio.transcriptions.create(file=file, model="whisper-1", stream=True))
        assert [type(e).__name__ for e in events[:-1]] == ["TranscriptionTextDeltaEvent"] * (len(events) - 1)
        assert all(e.type == "transcript.text.delta" for e in events[:-1])
        done = events[-1]
        assert done.type == "transcript.text.done"
        assert "".join(e.delta for e in events[:-1]) == done.text == expected.text
        assert done.usage.type == "tokens"
        assert done.usage.output_tokens == sum(s.n_tokens for s in expected.segments)
        assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens


def test_long_audio_goes_through_the_long_recording_pipeline(client, tiny_model, clips, options, tmp_path):
    audio = np.concatenate([tiny_model._decode(c["path"], None).samples for c in clips[:6]])
    assert len(audio) > 30 * 16000
    sf.write(tmp_path / "long.wav", audio, 16000)
    expected = tiny_model.transcribe(str(tmp_path / "long.wav"), options=options)
    assert len(expected.segments) > 1
    with open(tmp_path / "long.wav", "rb") as file:
        result = client.audio.transcriptions.create(file=file, model="whisper-1", response_format="verbose_json")
    assert [(s.start, s.end, s.text) for s in result.segments] == [
        (s.start_s, s.end_s, s.text) for s in expected.segments]
    with open(tmp_path / "long.wav", "rb") as file:
        events = list(client.audio.transcriptions.create(file=file, model="whisper-1", stream=True))
    assert len(events) == 1 + sum(1 for s in expected.segments if s.text)
    assert events[-1].text == expected.text


def test_stream_with_segment_times_adds_segment_events(server, offline):
    path, expected = next(iter(offline.items()))
    with open(path, "rb") as file:
        response = httpx.post(server + "/v1/audio/transcriptions", timeout=120,
                              files={"file": ("a.wav", file)},
                              data={"model": "x", "stream": "true", "timestamp_granularities[]": "segment"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    segments = [e for e in events if e["type"] == "transcript.text.segment"]
    assert [(e["start"], e["end"], e["text"]) for e in segments] == [
        (s.start_s, s.end_s, s.text) for s in expected.segments]
    assert events[-1]["type"] == "transcript.text.done"


def test_silence_gives_an_empty_transcript(client, tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    with open(tmp_path / "quiet.wav", "rb") as file:
        result = client.audio.transcriptions.create(file=file, model="whisper-1", response_format="verbose_json")
    assert result.text == "" and result.segments == []
    with open(tmp_path / "quiet.wav", "rb") as file:
        assert list(srt.parse(client.audio.transcriptions.create(file=file, model="w", response_format="srt"))) == []


# ------------------------------------------------------------------------------------------------ errors


def expect_error(call, status: int, code: str | None = None, param: str | None = None):
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    error = caught.value
    assert error.status_code == status, error.body
    assert set(error.body) >= {"message", "type", "param", "code"}, error.body  # the OpenAI shape
    assert error.body["message"]
    if code is not None:
        assert error.body["code"] == code, error.body
    if param is not None:
        assert error.body["param"] == param, error.body
    return error


def test_bad_parameters_are_400_naming_the_field(client, clip_22k):
    def create(**kwargs):
        with open(clip_22k, "rb") as file:
            return client.audio.transcriptions.create(file=file, model="whisper-1", **kwargs)

    expect_error(lambda: create(language="en"), 400, "unsupported_language", "language")
    expect_error(lambda: create(response_format="diarized_json"), 400, "invalid_response_format", "response_format")
    expect_error(lambda: create(response_format="verbose_json", timestamp_granularities=["word"]), 400,
                 "unsupported_granularity", "timestamp_granularities")
    expect_error(lambda: create(temperature=3), 400, "invalid_temperature", "temperature")
    expect_error(lambda: create(stream=True, response_format="srt"), 400, "unsupported_stream_format", "stream")
    # prompt and temperature within range are accepted (and documented as ignored)
    assert create(prompt="Salom", temperature=0.2).text is not None


def test_bad_uploads_are_400_or_415_and_the_server_stays_up(client, server, tmp_path, clip_22k):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not audio at all\n" * 20)
    data = open(clip_22k, "rb").read()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 3])  # the header promises three times more
    (tmp_path / "noise.mp3").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())

    def create(name):
        with open(tmp_path / name, "rb") as file:
            return client.audio.transcriptions.create(file=file, model="whisper-1")

    error = expect_error(lambda: create("empty.wav"), 400, "empty_file", "file")
    assert "empty.wav" in error.body["message"] and "/tmp" not in error.body["message"]
    expect_error(lambda: create("notes.txt"), 415, "unsupported_media", "file")
    error = expect_error(lambda: create("cut.wav"), 400, "invalid_audio", "file")
    assert "truncated" in error.body["message"]
    expect_error(lambda: create("noise.mp3"), 415)
    assert httpx.get(server + "/health").json() == {"status": "ok"}
    with open(clip_22k, "rb") as file:
        assert client.audio.transcriptions.create(file=file, model="whisper-1").text is not None


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_video_without_audio_is_415(client, tmp_path):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=black:s=32x32:d=1",
                    str(tmp_path / "silent.mp4")], check=True)
    with open(tmp_path / "silent.mp4", "rb") as file:
        expect_error(lambda: client.audio.transcriptions.create(file=file, model="w"), 415, "no_audio_stream")


def test_malformed_requests_get_openai_shaped_errors(server):
    def check(response, status, code=None):
        assert response.status_code == status, response.text
        body = response.json()["error"]
        assert set(body) == {"message", "type", "param", "code"}
        if code:
            assert body["code"] == code

    url = server + "/v1/audio/transcriptions"
    check(httpx.post(url, json={"file": "a.wav"}), 400, "invalid_content_type")
    check(httpx.post(url, data={"model": "x"}, files={"other": ("a", b"x")}), 400, "missing_file")
    check(httpx.post(url, files={"file": ("a.wav", b"RIFF")}), 400, "missing_model")
    check(httpx.post(url, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}),
          400)
    check(httpx.post(server + "/v1/audio/translations", data={"model": "x"}, files={"file": ("a.wav", b"x")}),
          400, "unsupported_task")
    check(httpx.get(server + "/v1/nothing-here"), 404)
    check(httpx.get(server + "/v1/models/whisper-1"), 404, "model_not_found")
    assert httpx.get(server + "/health").status_code == 200


def test_models_health_ready_and_metrics(client, server, clip_22k):
    models = client.models.list()
    assert [m.id for m in models.data] == ["ovoz-uz"] and models.data[0].object == "model"
    assert client.models.retrieve("ovoz-uz").owned_by == "ovoz"
    assert httpx.get(server + "/ready").json()["status"] == "ready"
    with open(clip_22k, "rb") as file:
        client.audio.transcriptions.create(file=file, model="whisper-1")
    metrics = httpx.get(server + "/metrics").text
    for name in ("ovoz_requests_total", "ovoz_audio_seconds_total", "ovoz_queue_depth", "ovoz_batch_size_bucket",
                 "ovoz_request_latency_seconds_bucket"):
        assert name in metrics
    line = next(x for x in metrics.splitlines()
                if x.startswith('ovoz_requests_total{endpoint="/v1/audio/transcriptions",status="200"}'))
    assert float(line.split()[-1]) >= 1


def test_web_page_and_its_files_are_served(server):
    page = httpx.get(server + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert httpx.get(server + asset).status_code == 200
    assert "https://" not in page.text  # no CDN
    subtitles = httpx.post(server + "/v1/ovoz/subtitles", json={"format": "srt", "segments": [
        {"start": 0.0, "end": 1.5, "text": "salom dunyo"}]})
    assert [c.content for c in srt.parse(subtitles.text)] == ["salom dunyo"]


# ------------------------------------------------------------------------------------------ limits, auth


def test_uploads_over_the_limit_are_413_and_leave_no_file(tiny_model, settings, clip_22k, running):
    from ovoz.serve import create_app

    app = create_app(settings.replace(max_upload_bytes=50_000), transcriber=tiny_model)
    service = app.state.service
    with running(app, wait_ready=False) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with open(clip_22k, "rb") as file:  # about 190 kB
            expect_error(lambda: client.audio.transcriptions.create(file=file, model="w"), 413, "file_too_large",
                         "file")
        assert list(service.upload_dir.iterdir()) == []
        assert httpx.get(url + "/health").status_code == 200


def test_api_keys_are_checked(tiny_model, settings, clip_22k, running):
    from ovoz.serve import create_app

    app = create_app(settings.replace(api_keys=("first-key", "second-key")), transcriber=tiny_model)
    with running(app, wait_ready=False) as url:
        for value in (None, "Bearer", "Bearer wrong", "Basic first-key", "Bearer first-key-but-longer"):
            headers = {"Authorization": value} if value is not None else {}
            response = httpx.get(url + "/v1/models", headers=headers)
            assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
        wrong = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        with open(clip_22k, "rb") as file:
            expect_error(lambda: wrong.audio.transcriptions.create(file=file, model="w"), 401, "invalid_api_key")
        for key in ("first-key", "second-key"):
            assert openai.OpenAI(base_url=url + "/v1", api_key=key).models.list().data
        assert httpx.get(url + "/health").status_code == 200  # probes stay open


def test_a_full_queue_answers_429_with_retry_after(tiny_model, settings, clip_22k, running):
    import threading

    from ovoz.serve import create_app

    app = create_app(settings.replace(max_requests=1), transcriber=tiny_model)
    release = threading.Event()
    with running(app) as url:
        def slow_body():  # an upload that is admitted, then takes its time
            yield b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx\r\n"
            release.wait(30)
            yield b"--b--\r\n"

        first = threading.Thread(target=lambda: httpx.post(
            url + "/v1/audio/transcriptions", content=slow_body(), timeout=60,
            headers={"content-type": "multipart/form-data; boundary=b"}))
        first.start()
        deadline = time.monotonic() + 30
        while app.state.service.in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with open(clip_22k, "rb") as file:
            error = expect_error(lambda: client.audio.transcriptions.create(file=file, model="w"), 429, "queue_full")
        assert int(error.response.headers["retry-after"]) >= 1
        release.set()
        first.join(60)
        with open(clip_22k, "rb") as file:
            assert client.audio.transcriptions.create(file=file, model="w").text is not None
        assert app.state.service.in_flight == 0


def test_requests_past_their_timeout_get_504(tiny_model, settings, clip_22k, running):
    from ovoz.serve import create_app

    app = create_app(settings.replace(timeout_s=1e-6, timeout_per_audio_s=1e-9), transcriber=tiny_model)
    with running(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with open(clip_22k, "rb") as file:
            error = expect_error(lambda: client.audio.transcriptions.create(file=file, model="w"), 504, "timeout")
        assert "timeout" in error.body["message"]
        assert app.state.service.queue.n_pending == 0  # its jobs were withdrawn


def test_a_model_that_fails_to_load_makes_ready_503(settings, tmp_path, clip_22k, running):
    from ovoz.serve import create_app

    app = create_app(settings.replace(base=str(tmp_path / "no-such-model"), no_adapter=True, device="cpu",
                                      local_files_only=True))
    with running(app, wait_ready=False) as url:
        deadline = time.monotonic() + 60
        while app.state.service.model.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "model_unavailable"
        assert httpx.get(url + "/health").status_code == 200
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with open(clip_22k, "rb") as file:
            expect_error(lambda: client.audio.transcriptions.create(file=file, model="w"), 503, "model_unavailable")
