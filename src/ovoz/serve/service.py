"""One request's way through the server: admission, decoding the upload, chunking, jobs, segments in order.

Uploaded audio is decoded and cut into chunks (``ovoz.pipeline.plan``: Silero VAD past 30 s) in worker threads;
all its chunks go to the fair queue at once, and ``ovoz.pipeline.segments`` turns the finished chunks into
segments in time order (repetition guard, overlap merge, script conversion: exactly what ``Transcriber`` does),
with one chunk per group so that a stream sends each segment as soon as it and its predecessors are decoded.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np

from .. import pipeline
from ..errors import AudioError
from ..repetition import max_new_tokens_for
from ..types import AUDIO_TOKENS_PER_S, SAMPLE_RATE, Segment, TranscribeOptions, Transcript, TranscriptionInfo
from .errors import APIError, audio_error
from .metrics import Metrics
from .scheduler import FairQueue, ModelThread, RequestCancelled, RequestJobs
from .settings import ServeSettings

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A decoded upload and its chunk plan."""

    samples: np.ndarray
    chunks: list
    duration_s: float
    filename: str | None


def load_transcriber(settings: ServeSettings) -> Any:
    """The model that ``settings`` name (base, adapter, device, dtype, quantization, ...), loaded."""
    from ..api import load
    from ..types import DEFAULT_ADAPTER, DEFAULT_BASE

    s = settings
    adapter = None if s.no_adapter else (s.adapter or DEFAULT_ADAPTER)
    return load(base=s.base or DEFAULT_BASE, adapter=adapter, device=s.device, dtype=s.dtype,
                quantization=s.quantization, local_files_only=s.local_files_only, fused_kernels=s.fused_kernels,
                engine=s.engine)


class Service:
    """Everything one app shares: settings, the queue, the model thread, metrics, admission counting."""

    def __init__(self, settings: ServeSettings, transcriber: Any = None, upload_dir: Path | None = None,
                 options: TranscribeOptions | None = None) -> None:
        from .uploads import private_directory

        self.settings = settings
        self.options = options or TranscribeOptions(batch_size=settings.batch_size,
                                                    max_new_tokens=settings.max_new_tokens, script=settings.script)
        self.queue = FairQueue()
        self.model = ModelThread(self.queue, self.options, transcriber=transcriber,
                                 loader=None if transcriber is not None else self._load, warmup=settings.warmup,
                                 before_ready=self._load_vad if settings.warmup else None)
        self.upload_dir = upload_dir or private_directory()
        self.in_flight = 0
        self.metrics = Metrics(lambda: self.queue.n_pending, lambda: self.in_flight)
        self.queue.on_take = self.metrics.observe_batch
        self._vad: Any = None
        self._vad_lock = threading.Lock()
        self._text_tokens: int | None = None
        self._done_audio: collections.deque = collections.deque(maxlen=256)  # (finished at, audio seconds)

    def _load(self) -> Any:
        return load_transcriber(self.settings)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.model.start()

    def stop(self) -> None:
        self.model.stop()
        try:
            self.upload_dir.rmdir()
        except OSError:
            pass

    @property
    def ready(self) -> bool:
        return self.model.ready.is_set() and self.model.alive

    # ------------------------------------------------------------------ admission
    def admit(self) -> None:
        """Count a request in, or refuse it with 429 when ``max_requests`` are in flight."""
        if self.model.error is not None:
            raise APIError(503, f"the model is not available ({self.model.error}); see the server log.",
                           code="model_unavailable")
        if self.in_flight >= self.settings.max_requests:
            raise APIError(429, f"the server has {self.in_flight} requests in flight (its limit, --max-requests / "
                           "OVOZ_MAX_REQUESTS); retry after the time in Retry-After.", code="queue_full",
                           headers={"Retry-After": str(self.retry_after())})
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    def retry_after(self) -> int:
        """Seconds until the waiting audio is likely decoded, from the last minute's throughput (1 to 60)."""
        now = time.monotonic()
        recent = [(t, s) for t, s in self._done_audio if now - t < 60]
        if not recent:
            return 1
        span = max(now - recent[0][0], 1.0)
        rate = sum(s for _, s in recent) / span
        return int(min(60, max(1, math.ceil(self.queue.pending_audio_s / max(rate, 1e-6)))))

    # ------------------------------------------------------------------ preparing
    async def prepare(self, path: Path, filename: str | None) -> Prepared:
        """Decode the upload and plan its chunks in worker threads; decoder errors become 400/415."""
        from ..audio import decode_audio

        try:
            decoded = await asyncio.to_thread(decode_audio, path)
        except AudioError as error:
            raise audio_error(error, filename) from None
        samples = decoded.samples
        chunks = await asyncio.to_thread(self._plan, samples)
        return Prepared(samples, chunks, round(len(samples) / SAMPLE_RATE, 3), filename)

    def _plan(self, samples: np.ndarray) -> list:
        with self._vad_lock:  # one Silero instance, used by one thread at a time
            return pipeline.plan(samples, self.options, self._vad_factory)

    def _load_vad(self) -> None:
        with self._vad_lock:
            self._vad_factory()

    def _vad_factory(self) -> Any:
        if self._vad is None:
            from ..vad import SileroVAD

            self._vad = SileroVAD(self.options.vad_options)
        return self._vad

    def submit(self, prepared: Prepared) -> RequestJobs:
        clips = [prepared.samples[c.start : c.end] for c in prepared.chunks]
        caps = [max_new_tokens_for(c.duration_s, self.options.tokens_per_s_cap, self.options.max_new_tokens)
                for c in prepared.chunks]
        return self.queue.submit(clips, caps)

    # ------------------------------------------------------------------ results
    async def segments(self, prepared: Prepared, handle: RequestJobs, deadline: float) -> AsyncIterator[Segment]:
        """The request's segments in time order, each as soon as its chunk (and the next one) is decoded.
        Raises 504 past ``deadline`` (``time.monotonic()``) and :class:`RequestCancelled` when withdrawn."""
        from ..transcriber import postprocess_text

        jobs = handle.jobs
        consumed = 0

        def decode(clips: list, caps: list) -> list:
            nonlocal consumed
            outputs = [jobs[consumed + i].future.result(timeout=0) for i in range(len(clips))]
            consumed += len(clips)
            return outputs

        options = self.options
        generator = pipeline.segments(prepared.samples, prepared.chunks, decode, options, group_size=1,
                                      postprocess=lambda text: postprocess_text(text, options))
        # ``segments`` yields a segment once the chunk after it is decoded (an overlap may change its text).
        for index in range(len(jobs) + 1):
            for needed in range(index, min(index + 2, len(jobs))):
                await self._wait(handle, needed, deadline)
            segment = next(generator, None)
            if segment is None:
                break
            yield segment
        self._done_audio.append((time.monotonic(), prepared.duration_s))

    async def _wait(self, handle: RequestJobs, index: int, deadline: float) -> None:
        job = handle.jobs[index]
        if job.future.done():
            return
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            await asyncio.wait_for(asyncio.wrap_future(job.future), remaining)
        except (TimeoutError, asyncio.TimeoutError):
            handle.cancel("timed out")
            raise APIError(504, f"transcribing took longer than this request's timeout of "
                           f"{self.settings.timeout_for(handle.audio_s):.0f} s (--timeout + --timeout-per-audio-second "
                           "x the audio's seconds; OVOZ_TIMEOUT_S, OVOZ_TIMEOUT_PER_AUDIO_S); the server is busy, "
                           "retry later or raise them.", code="timeout") from None
        except RequestCancelled:
            raise
        except Exception:  # the engine failed this chunk: raised again by decode(), reported there
            return

    def usage_tokens(self, prepared: Prepared, segments: list[Segment]) -> tuple[int, int, int]:
        """(audio tokens, text tokens, output tokens) of a request, for the stream's ``usage``."""
        audio = sum(int(round(c.duration_s * AUDIO_TOKENS_PER_S)) for c in prepared.chunks)
        if self._text_tokens is None:
            self._text_tokens = self._prompt_tokens()
        return audio, self._text_tokens * len(prepared.chunks), sum(s.n_tokens for s in segments)

    def _prompt_tokens(self) -> int:
        try:
            from ..prompt import render_prompt

            tokenizer = self.model.transcriber.processor.tokenizer
            ids = tokenizer(render_prompt(self.options.system_prompt, self.options.user_prompt),
                            add_special_tokens=False)["input_ids"]
            return len(ids)
        except Exception:  # noqa: BLE001 - a transcriber without a tokenizer (tests' fakes): count none
            return 0

    def transcript(self, prepared: Prepared, segments: list[Segment]) -> Transcript:
        info = getattr(self.model.transcriber, "info", None)
        details = TranscriptionInfo(prepared.duration_s, self.options, info.to_dict() if info is not None else {})
        return Transcript(" ".join(s.text for s in segments if s.text), tuple(segments), details, prepared.filename)

    def finished(self, prepared: Prepared) -> None:
        self.metrics.audio_seconds.inc(prepared.duration_s)
        self.metrics.chunks.inc(len(prepared.chunks))
