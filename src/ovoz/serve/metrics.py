"""Prometheus metrics of one server (a registry per app, so that several apps in one process stay apart)."""

from __future__ import annotations

from typing import Any, Callable

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Requests by endpoint and status, audio seconds, queue depth, jobs per engine take, request latency."""

    def __init__(self, queue_depth: Callable[[], float], in_flight: Callable[[], float]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("ovoz_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.audio_seconds = Counter("ovoz_audio_seconds", "Seconds of audio transcribed", registry=self.registry)
        self.chunks = Counter("ovoz_chunks", "Chunks (of at most 30 s) decoded", registry=self.registry)
        queue = Gauge("ovoz_queue_depth", "Chunks waiting for an engine slot", registry=self.registry)
        queue.set_function(queue_depth)
        requests = Gauge("ovoz_requests_in_flight", "Transcription requests admitted and not yet answered",
                         registry=self.registry)
        requests.set_function(in_flight)
        self.batch_size = Histogram("ovoz_batch_size", "Chunks handed to the engine at once (a batch, or a refill "
                                    "of free slots)", buckets=BATCH_BUCKETS, registry=self.registry)
        self.latency = Histogram("ovoz_request_latency_seconds", "Transcription request latency, upload included",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def observe_batch(self, n: Any) -> None:
        self.batch_size.observe(n)
