"""The FastAPI app: OpenAI's ``/v1/audio/transcriptions`` and ``/v1/models``, health, readiness, metrics, a web page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from .. import __version__
from ..types import TranscribeOptions
from . import auth, protocol
from .errors import APIError
from .scheduler import RequestCancelled
from .service import Prepared, Service
from .settings import ServeSettings
from .uploads import receive_upload

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
ENDPOINTS = ("/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/v1/ovoz/subtitles", "/health",
             "/ready", "/metrics", "/")


def create_app(settings: ServeSettings | None = None, transcriber: Any = None, *,
               options: TranscribeOptions | None = None) -> Any:
    """The server's ASGI app. ``transcriber``: a loaded :class:`ovoz.Transcriber`; ``None`` loads the model of
    ``settings`` in the background (``/health`` answers at once, ``/ready`` once the model is loaded).
    ``options``: decoding options for every request (default: from ``settings``' batch size, token cap, script)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    settings = settings or ServeSettings.from_env()
    service = Service(settings, transcriber, options=options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        service.start()
        yield
        service.stop()

    app = FastAPI(title="ovoz", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Uzbek speech-to-text on Gemma 4, with OpenAI's audio transcription API.")
    app.state.service = service

    def error_response(error: APIError) -> Any:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> Any:
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Any:
        return error_response(APIError(error.status_code, str(error.detail), code=f"http_{error.status_code}",
                                       headers=dict(error.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Any:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(APIError(422, f"{where}: {first.get('msg', 'invalid request')}", param=where or None,
                                       code="invalid_request"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Any:
        logger.exception("unexpected error on %s", request.url.path)
        return error_response(APIError(500, f"internal error ({type(error).__name__}: {error}); see the server log.",
                                       code="internal_error"))

    # ------------------------------------------------------------------ probes and listings
    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Any:
        if service.ready:
            return {"status": "ready", "model": settings.model_name}
        if service.model.error is not None:
            return error_response(APIError(503, f"the model failed to load or stopped: {service.model.error}",
                                           code="model_unavailable"))
        return error_response(APIError(503, "the model is loading; retry in a moment.", code="model_loading",
                                       headers={"Retry-After": "5"}))

    @app.get("/metrics")
    async def metrics() -> Any:
        body, media_type = service.metrics.render()
        return Response(body, media_type=media_type)

    def model_card() -> dict[str, Any]:
        return {"id": settings.model_name, "object": "model", "created": int(started_at), "owned_by": "ovoz"}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        auth.check(request.headers.get("authorization"), settings.api_keys)
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str, request: Request) -> Any:
        auth.check(request.headers.get("authorization"), settings.api_keys)
        if model_id != settings.model_name:
            raise APIError(404, f"model {model_id!r} is not served here; this server serves {settings.model_name!r}.",
                           param="model", code="model_not_found")
        return model_card()

    # ------------------------------------------------------------------ transcription
    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Any:
        auth.check(request.headers.get("authorization"), settings.api_keys)
        raise APIError(400, "ovoz has no translation model: it transcribes Uzbek speech to Uzbek text. Use "
                       "/v1/audio/transcriptions.", code="unsupported_task")

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Any:
        started = time.perf_counter()
        auth.check(request.headers.get("authorization"), settings.api_keys)
        service.admit()
        streaming = False
        try:
            upload = await receive_upload(request.headers, request.stream(), service.upload_dir,
                                          settings.max_upload_bytes)
            try:
                params = protocol.parse_transcription(upload)
                prepared = await service.prepare(upload.path, upload.filename)
            finally:
                upload.remove()  # decoded: the file is not needed any more
            deadline = time.monotonic() + settings.timeout_for(prepared.duration_s)
            handle = service.submit(prepared)
            if params.stream:
                streaming = True
                return _EventStream(service, handle, events(prepared, handle, deadline, params, started))
            watcher = asyncio.create_task(_watch_disconnect(request, handle))
            try:
                segments = [segment async for segment in service.segments(prepared, handle, deadline)]
            except RequestCancelled as error:
                raise APIError(499 if error.reason == "client disconnected" else 503,
                               f"the request was cancelled: {error.reason}.", code="cancelled") from None
            finally:
                watcher.cancel()
                handle.cancel("finished")  # nothing is left to decode; a no-op unless an error cut it short
            service.finished(prepared)
            transcript = service.transcript(prepared, segments)
            tokens = [_tokens(handle, segment) for segment in segments]
            body, media_type = protocol.render(transcript, params.response_format, tokens)
            service.metrics.latency.observe(time.perf_counter() - started)
            return Response(body, media_type=media_type)
        finally:
            if not streaming:
                service.release()

    async def events(prepared: Prepared, handle: Any, deadline: float, params: protocol.TranscriptionRequest,
                     started: float):
        segments = []
        with_segments = "segment" in params.timestamp_granularities
        try:
            async for segment in service.segments(prepared, handle, deadline):
                segments.append(segment)
                if with_segments:  # OpenAI's segment event, sent when the form asks for segment times
                    yield protocol.event({"type": "transcript.text.segment", "id": f"seg_{segment.id}",
                                          "start": segment.start_s, "end": segment.end_s, "text": segment.text,
                                          "speaker": ""})
                if segment.text:
                    delta = (" " if any(s.text for s in segments[:-1]) else "") + segment.text
                    yield protocol.event({"type": "transcript.text.delta", "delta": delta})
            service.finished(prepared)
            text = " ".join(s.text for s in segments if s.text)
            usage = protocol.token_usage(*service.usage_tokens(prepared, segments))
            service.metrics.latency.observe(time.perf_counter() - started)
            yield protocol.event({"type": "transcript.text.done", "text": text, "usage": usage})
        except APIError as error:
            yield protocol.event({"type": "error", **error.body()})
        except RequestCancelled as error:
            yield protocol.event({"type": "error", **APIError(503, f"cancelled: {error.reason}",
                                                                code="cancelled").body()})

    @app.post("/v1/ovoz/subtitles")
    async def subtitles_of(request: Request) -> Any:
        """ovoz's own: verbose_json segments (as the web page collects them from a stream) to srt, vtt or txt."""
        from ..types import Segment, Transcript, TranscriptionInfo

        try:
            body = await request.json()
            fmt = body.get("format", "srt")
            segments = tuple(Segment(i, float(s["start"]), float(s["end"]), str(s["text"]))
                             for i, s in enumerate(body.get("segments", [])))
        except Exception as error:  # noqa: BLE001 - any malformed body is the client's
            raise APIError(400, f"send JSON {{\"format\": \"srt\", \"segments\": [{{\"start\", \"end\", \"text\"}}]}} "
                           f"({error}).", code="invalid_body") from None
        if fmt not in ("srt", "vtt", "text"):
            raise APIError(400, f"format={fmt!r}: choose srt, vtt or text.", param="format")
        transcript = Transcript(" ".join(s.text for s in segments if s.text), segments,
                                TranscriptionInfo(max((s.end_s for s in segments), default=0.0)))
        text, media_type = protocol.render(transcript, fmt)
        return Response(text, media_type=media_type)

    # ------------------------------------------------------------------ the web page
    @app.get("/")
    async def index() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    started_at = time.time()
    return _count_responses(app, service)


def _tokens(handle: Any, segment: Any) -> tuple[int, ...]:
    try:
        return tuple(handle.jobs[segment.id].future.result(timeout=0).token_ids)
    except Exception:  # noqa: BLE001
        return ()


async def _watch_disconnect(request: Any, handle: Any) -> None:
    """Withdraw the request's jobs when its client goes away (the body is read: the next message is the end)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            logger.info("client disconnected; cancelling its %d chunks", len(handle.jobs))
            handle.cancel("client disconnected")
            return


class _EventStream(StreamingResponse):
    """``text/event-stream`` of an async generator; the request's jobs are withdrawn and it is counted out
    however the stream ends (finished, or the client gone before or during it)."""

    def __init__(self, service: Service, handle: Any, generator: Any) -> None:
        super().__init__(generator, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.service = service
        self.handle = handle
        self.generator = generator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.handle.cancel("client disconnected")
            await self.generator.aclose()
            self.service.release()


class OnResponseStart:
    """ASGI wrapper that passes each HTTP response's start message through ``hook(scope, message)`` (which returns
    the message to send: the same, or with more headers) before it goes out; attributes are the wrapped app's."""

    def __init__(self, app: Any, hook: Any) -> None:
        self.app = app
        self.hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def hooked_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = self.hook(scope, message)
            await send(message)

        await self.app(scope, receive, hooked_send)


def _count_responses(app: Any, service: Service) -> OnResponseStart:
    """``app`` counting its responses by endpoint and status for ``/metrics``."""

    def count(scope: Any, message: Any) -> Any:
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else ("/v1/models" if path.startswith("/v1/models/") else "other")
        service.metrics.count(endpoint, message["status"])
        return message

    return OnResponseStart(app, count)
