"""The fair job queue and the model thread: fairness between requests, cancellation, both decoding paths."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ovoz.serve.scheduler import FairQueue, ModelThread, RequestCancelled


def clips(n: int, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32) for _ in range(n)]


def owner(job):
    return job.request.id


def test_a_short_request_takes_the_next_free_slot_behind_a_long_upload():
    queue = FairQueue()
    long = queue.submit(clips(20), [8] * 20)
    first = queue.take(4, wait=False)
    assert [owner(j) for j in first] == [long.id] * 4
    short = queue.submit(clips(1), [8])
    first[0].done(RuntimeError("finished"))  # a slot frees up
    assert [owner(j) for j in queue.take(1, wait=False)] == [short.id]
    assert queue.n_pending == 16


def test_requests_share_the_slots_in_turn():
    queue = FairQueue()
    a, b, c = (queue.submit(clips(6, seed=i), [8] * 6) for i in range(3))
    taken = queue.take(6, wait=False)
    assert sorted(owner(j) for j in taken) == sorted([a.id, b.id, c.id] * 2)
    # Jobs of one request keep their order.
    assert [a.jobs.index(j) for j in taken if j.request is a] == [0, 1]


def test_cancel_withdraws_waiting_jobs_and_wakes_the_waiters():
    queue = FairQueue()
    request = queue.submit(clips(5), [8] * 5)
    running = queue.take(2, wait=False)
    request.cancel("client disconnected")
    assert queue.n_pending == 0 and queue.pending_audio_s == pytest.approx(0.0)
    assert queue.take(4, wait=False) == []
    assert all(job.cancelled() for job in request.jobs)
    with pytest.raises(RequestCancelled, match="client disconnected"):
        request.jobs[4].future.result(timeout=1)
    running[0].done(RuntimeError("late"))  # an engine finishing a withdrawn job does not raise
    assert request.in_engine == 1


def test_take_waits_for_jobs_and_returns_on_close():
    queue = FairQueue()
    got = []
    waiter = threading.Thread(target=lambda: got.append(queue.take(3, wait=True)))
    waiter.start()
    time.sleep(0.05)
    assert waiter.is_alive()
    queue.submit(clips(2), [8, 8])
    waiter.join(5)
    assert len(got[0]) == 2
    closer = threading.Thread(target=lambda: got.append(queue.take(3, wait=True)))
    closer.start()
    queue.close()
    closer.join(5)
    assert got[1] == [] and queue.closed
    late = queue.submit(clips(1), [8])
    with pytest.raises(RequestCancelled):
        late.jobs[0].future.result(timeout=1)


def decode_alone(model, options, clip, cap):
    return model.generate_clips([clip], options, max_new_tokens=[cap])[0]


def run_thread(model, options, use_serve_jobs):
    queue = FairQueue()
    thread = ModelThread(queue, options, transcriber=model, warmup=False)
    thread.use_serve_jobs = use_serve_jobs
    thread.start()
    requests = [queue.submit(clips(n, seconds=1 + i, seed=i), [6] * n) for i, n in enumerate((3, 1, 2))]
    results = [[job.future.result(timeout=120) for job in r.jobs] for r in requests]
    thread.stop()
    assert not thread.alive and thread.error is None
    for request, outputs in zip(requests, results):
        for job, output in zip(request.jobs, outputs):
            alone = decode_alone(model, options, job.clip, 6)
            assert (output.text, output.token_ids, output.stopped) == (alone.text, alone.token_ids, alone.stopped)
            assert output.avg_logprob == pytest.approx(alone.avg_logprob, abs=1e-4)


def test_the_fallback_loop_batches_jobs_of_several_requests(tiny_model):
    import ovoz

    options = ovoz.TranscribeOptions(max_new_tokens=6, batch_size=4)
    batches = []
    original = tiny_model.generate_clips

    class Recording(type(tiny_model)):
        def generate_clips(self, clips_, options_, **kwargs):
            if threading.current_thread().name == "ovoz-model":
                batches.append(len(clips_))
            return original(clips_, options_, **kwargs)

    recording = Recording.__new__(Recording)
    recording.__dict__.update(tiny_model.__dict__)
    run_thread(recording, options, use_serve_jobs=False)
    assert sum(batches) == 6 and max(batches) > 1


def test_the_thread_hands_the_queue_to_serve_jobs(tiny_model):
    """A transcriber with ``serve_jobs`` (the decoder's own refill loop) is handed the queue itself."""
    import ovoz

    options = ovoz.TranscribeOptions(max_new_tokens=6, batch_size=4)
    calls = []
    Transcriber = type(tiny_model)

    class Spy(Transcriber):
        def serve_jobs(self, source, options_):
            calls.append((source, options_))
            return super().serve_jobs(source, options_)

        def generate_clips(self, *args, **kwargs):
            assert threading.current_thread().name != "ovoz-model", "the model thread bypassed serve_jobs"
            return super().generate_clips(*args, **kwargs)

    spy = Spy.__new__(Spy)
    spy.__dict__.update(tiny_model.__dict__)
    run_thread(spy, options, use_serve_jobs=None)
    assert len(calls) == 1 and calls[0][1] == options


def test_a_failing_batch_fails_its_jobs_not_the_thread(tiny_model):
    import ovoz

    options = ovoz.TranscribeOptions(max_new_tokens=6, batch_size=4)
    queue = FairQueue()
    thread = ModelThread(queue, options, transcriber=tiny_model, warmup=False)
    thread.use_serve_jobs = False
    thread.start()
    bad = queue.submit([np.zeros(31 * 16000, np.float32)], [6])  # longer than one prompt: the engine refuses it
    with pytest.raises(ovoz.AudioTooLongError):
        bad.jobs[0].future.result(timeout=60)
    good = queue.submit(clips(1), [6])
    assert good.jobs[0].future.result(timeout=60).text is not None
    thread.stop()
    assert thread.error is None
