"""Batching across requests: a fair queue of clip jobs and the one thread that owns the model.

Every request's audio is cut into chunks of at most 30 s (:func:`ovoz.pipeline.plan`); each chunk becomes a
:class:`Job`. Jobs of all requests wait in one :class:`FairQueue`; the model thread takes them a few at a time into
the engine's slots. The queue hands out jobs fairly: each pick goes to the request with the fewest jobs in the
engine now (ties: fewest taken so far, then the oldest), so a one-hour upload holds at most its share of the slots
and a short request that arrives behind it starts at the next free slot.

The engine side follows ovoz's ``JobSource``/``ClipJob`` protocol: when the transcriber has ``serve_jobs`` (the
static CUDA engine refills a finished row with the next job at once), the thread runs it; otherwise it loops over
``take(batch_size)`` + ``Transcriber.generate_clips`` (batches still mix requests).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..types import SAMPLE_RATE, TranscribeOptions

logger = logging.getLogger(__name__)


SERVER_AUDIO_S = 24 * 3600.0
"""The audio a server announces to its transcriber (``expect_audio``): it decodes for hours, so with
``fused_kernels`` auto a decoder that weighs a kernel build against the job's length builds them, at warm-up."""


class RequestCancelled(Exception):
    """The request's jobs were withdrawn (client gone, timeout, shutdown); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Job:
    """One chunk of one request (implements ``ClipJob``): the engine calls :meth:`done` once with its result."""

    __slots__ = ("clip", "max_new_tokens", "request", "future", "taken_at")

    def __init__(self, clip: np.ndarray, max_new_tokens: int, request: "RequestJobs") -> None:
        self.clip = clip
        self.max_new_tokens = max_new_tokens
        self.request = request
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.taken_at: float | None = None

    def done(self, result: Any) -> None:
        """The engine's answer: a ``Generation`` or the exception that stopped it."""
        self.request.job_finished(self)
        try:
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)
        except concurrent.futures.InvalidStateError:  # already cancelled or timed out: nobody waits for it
            pass

    def cancelled(self) -> bool:
        return self.request.cancelled


@dataclass(eq=False)
class RequestJobs:
    """The jobs of one request and its bookkeeping in the queue."""

    id: int
    jobs: list[Job] = field(default_factory=list)
    pending: deque = field(default_factory=deque)
    in_engine: int = 0
    taken: int = 0
    cancelled: bool = False
    _queue: "FairQueue | None" = None

    def job_finished(self, job: Job) -> None:
        if self._queue is not None:
            self._queue._finished(self)

    def cancel(self, reason: str) -> None:
        """Withdraw every job not yet finished: waiting ones leave the queue, running ones are dropped by engines
        that ask ``job.cancelled()``; everyone waiting on a job gets :class:`RequestCancelled`."""
        if self._queue is not None:
            self._queue._withdraw(self)
        self.cancelled = True
        for job in self.jobs:
            try:
                job.future.set_exception(RequestCancelled(reason))
            except concurrent.futures.InvalidStateError:
                pass

    @property
    def audio_s(self) -> float:
        return sum(len(job.clip) for job in self.jobs) / SAMPLE_RATE


class FairQueue:
    """The ``JobSource`` of the model thread: jobs of all requests, handed out fairly (see the module's notes)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._requests: dict[int, RequestJobs] = {}  # requests with waiting jobs, in arrival order
        self._ids = itertools.count()
        self._closed = False
        self.n_pending = 0
        self.pending_audio_s = 0.0
        self.on_take: Callable[[int], None] | None = None

    def submit(self, clips: list[np.ndarray], caps: list[int]) -> RequestJobs:
        """Queue one request's chunks; returns its handle (wait on ``handle.jobs[i].future``)."""
        request = RequestJobs(next(self._ids))
        request.jobs = [Job(clip, cap, request) for clip, cap in zip(clips, caps)]
        request._queue = self
        with self._lock:
            if self._closed:
                request._queue = None
                request.cancel("the server is shutting down")
                return request
            if request.jobs:
                request.pending.extend(request.jobs)
                self._requests[request.id] = request
                self.n_pending += len(request.jobs)
                self.pending_audio_s += request.audio_s
                self._lock.notify_all()
        return request

    def take(self, n: int, wait: bool) -> list[Job]:
        """Up to ``n`` jobs; ``wait=True`` blocks until there is at least one or the queue is closed."""
        with self._lock:
            while wait and not self.n_pending and not self._closed:
                self._lock.wait()
            jobs: list[Job] = []
            while len(jobs) < n and self._requests:
                request = min(self._requests.values(), key=lambda r: (r.in_engine, r.taken, r.id))
                job = request.pending.popleft()
                if not request.pending:
                    del self._requests[request.id]
                request.in_engine += 1
                request.taken += 1
                self.n_pending -= 1
                self.pending_audio_s -= len(job.clip) / SAMPLE_RATE
                job.taken_at = time.perf_counter()
                jobs.append(job)
        if jobs and self.on_take is not None:
            self.on_take(len(jobs))
        return jobs

    def _finished(self, request: RequestJobs) -> None:
        with self._lock:
            request.in_engine = max(0, request.in_engine - 1)

    def _withdraw(self, request: RequestJobs) -> None:
        with self._lock:
            if self._requests.pop(request.id, None) is not None:
                self.n_pending -= len(request.pending)
                self.pending_audio_s -= sum(len(job.clip) for job in request.pending) / SAMPLE_RATE
                request.pending.clear()

    def close(self) -> None:
        """No more jobs: waiting ones are cancelled, ``take`` returns at once from now on."""
        with self._lock:
            self._closed = True
            waiting = list(self._requests.values())
            self._lock.notify_all()
        for request in waiting:
            request.cancel("the server is shutting down")

    @property
    def closed(self) -> bool:
        return self._closed


class ModelThread:
    """The background thread that owns the model: loads it (when given a loader), warms it up, then decodes the
    queue's jobs until the queue is closed. ``ready`` is set once it decodes; ``error`` holds why it stopped."""

    def __init__(self, queue: FairQueue, options: TranscribeOptions, *, transcriber: Any = None,
                 loader: Callable[[], Any] | None = None, warmup: bool = True, linger_s: float = 0.005,
                 before_ready: Callable[[], Any] | None = None) -> None:
        if transcriber is None and loader is None:
            raise ValueError("give a transcriber or a loader")
        self.queue = queue
        self.options = options
        self.transcriber = transcriber
        self.loader = loader
        self.warmup = warmup
        self.linger_s = linger_s
        self.before_ready = before_ready
        """Fallback loop: a batch that is not full waits this long for more jobs (clients answered together
        send their next requests together)."""
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.use_serve_jobs: bool | None = None
        """None: decide by whether the transcriber has ``serve_jobs``; False forces the take/generate loop."""
        self._thread = threading.Thread(target=self._main, name="ovoz-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.queue.close()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            if self.transcriber is None:
                logger.info("loading the model")
                self.transcriber = self.loader()  # type: ignore[misc]
            if hasattr(self.transcriber, "expect_audio"):
                self.transcriber.expect_audio(SERVER_AUDIO_S)
            # The warm-up goes through the queue, so that it runs the very engine (slots, graphs, kernels) that
            # serves; it is sent from a helper thread, since this one decodes from now on.
            threading.Thread(target=self._warm_up, name="ovoz-warmup", daemon=True).start()
            serve_jobs = getattr(self.transcriber, "serve_jobs", None)
            if serve_jobs is not None and self.use_serve_jobs is not False:
                logger.info("decoding jobs with %s.serve_jobs (%d slots)", type(self.transcriber).__name__,
                            self.options.batch_size)
                serve_jobs(self.queue, self.options)
            else:
                self._loop()
        except BaseException as error:  # noqa: BLE001 - report it on /ready and to every waiting request
            logger.exception("the model thread stopped")
            self.error = error
            self.ready.clear()
            self.queue.close()

    def _warm_up(self) -> None:
        try:
            if self.warmup:
                started = time.perf_counter()
                clip = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
                self.queue.submit([clip], [4]).jobs[0].future.result(timeout=1800)
                logger.info("warm-up decode took %.2f s", time.perf_counter() - started)
            if self.before_ready is not None:
                self.before_ready()
        except Exception:  # noqa: BLE001 - requests will show what is wrong; the server still answers
            logger.exception("the warm-up failed")
        if self.error is None:
            self.ready.set()

    def _loop(self) -> None:
        """Batches of up to ``batch_size`` jobs from any requests through ``generate_clips``."""
        while True:
            jobs = self.queue.take(self.options.batch_size, wait=True)
            if not jobs:
                if self.queue.closed:
                    return
                continue
            if len(jobs) < self.options.batch_size and self.linger_s > 0:
                time.sleep(self.linger_s)
                jobs += self.queue.take(self.options.batch_size - len(jobs), wait=False)
            live = [job for job in jobs if not job.cancelled()]
            for job in jobs:
                if job.cancelled():
                    job.done(RequestCancelled("cancelled before decoding"))
            if not live:
                continue
            try:
                outputs = self.transcriber.generate_clips([job.clip for job in live], self.options,
                                                          max_new_tokens=[job.max_new_tokens for job in live])
            except Exception as error:  # noqa: BLE001 - one bad batch fails its jobs, not the server
                logger.exception("decoding a batch of %d chunks failed", len(live))
                for job in live:
                    job.done(error)
                continue
            for job, output in zip(live, outputs):
                job.done(output)
