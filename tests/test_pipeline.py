"""Long audio end to end on the tiny model: VAD chunks -> batched decoding -> timed segments.

The recording is assembled from the real clips with 2-4 s pauses between them, then a 71 s stretch of speech
with no pause at all (the two single-breath USC clips, trimmed to their speech and joined back to back). The
transcripts are random bytes (random weights), so the checks are on times: every decoded clip is traced back
to the exact samples it came from.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from ovoz import pipeline
from ovoz.audio import load_audio
from ovoz.types import MAX_CLIP_S, MAX_CLIP_SAMPLES, SAMPLE_RATE, TranscribeOptions
from ovoz.vad import Chunk

FAST = TranscribeOptions(max_new_tokens=4, batch_size=4)
GAPS_S = (2.0, 3.5, 2.5, 4.0, 3.0, 2.0, 3.0)
TOLERANCE = int(0.1 * SAMPLE_RATE)
"""Silero on the whole recording and on one clip alone may place a speech edge a frame or two apart."""


def _reference_speech(vad, audio: np.ndarray) -> list[tuple[int, int]]:
    """Speech spans of one clip by Silero's own span logic (an exact pass; not ovoz's code)."""
    import torch
    from silero_vad.utils_vad import get_speech_timestamps_from_probs

    with torch.inference_mode():
        probs = vad._model.audio_forward(torch.from_numpy(audio)[None], SAMPLE_RATE)[0].tolist()
    spans = get_speech_timestamps_from_probs(probs, sampling_rate=SAMPLE_RATE, audio_length_samples=audio.size)
    return [(s["start"], s["end"]) for s in spans]


@pytest.fixture(scope="module")
def recording(clips):
    """``(audio, regions, stretch)``: regions are the placed clips with their reference speech (samples)."""
    pytest.importorskip("silero_vad")
    from ovoz.vad import SileroVAD

    vad = SileroVAD()
    pieces: list[np.ndarray] = [np.zeros(SAMPLE_RATE, np.float32)]
    offset = SAMPLE_RATE
    regions = []
    decoded = [load_audio(c["path"]) for c in clips]
    for clip, audio, gap_s in zip(clips, decoded, GAPS_S):
        speech = _reference_speech(vad, audio)
        regions.append({"name": clip["path"], "start": offset, "end": offset + audio.size,
                        "speech": [(offset + s, offset + e) for s, e in speech]})
        pieces += [audio, np.zeros(int(gap_s * SAMPLE_RATE), np.float32)]
        offset += audio.size + int(gap_s * SAMPLE_RATE)
    # The USC clips spoken in one breath (a single speech span), trimmed to it and joined with no gap.
    breaths = []
    for clip, audio in zip(clips, decoded):
        speech = vad.speech_spans(audio)  # not even a 0.1 s pause inside
        if clip["sample_rate"] == 22050 and len(speech) == 1 and speech[0][1] == audio.size:
            breaths.append(audio[speech[0][0]:])
    assert len(breaths) >= 2
    stretch, n = [], 0
    while n < 70 * SAMPLE_RATE:
        stretch.append(breaths[len(stretch) % len(breaths)])
        n += stretch[-1].size
    stretch_span = (offset, offset + n)
    pieces += stretch + [np.zeros(2 * SAMPLE_RATE, np.float32)]
    return np.concatenate(pieces), regions, stretch_span


def _spy(monkeypatch, model, replace_text: str | None = None) -> list[np.ndarray]:
    """Record every clip the model decodes (in chunk order); optionally replace the generated text."""
    import dataclasses

    seen: list[np.ndarray] = []
    real = model.generate_clips

    def generate_clips(clips, options, **kwargs):
        seen.extend(np.array(c) for c in clips)
        outputs = real(clips, options, **kwargs)
        if replace_text is not None:
            outputs = [dataclasses.replace(o, text=replace_text) for o in outputs]
        return outputs

    monkeypatch.setattr(model, "generate_clips", generate_clips)
    return seen


@pytest.fixture(scope="module")
def long_run(tiny_model, recording):
    audio = recording[0]
    progress: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        decoded = _spy(patch, tiny_model)
        transcript = tiny_model.transcribe(audio, options=FAST, on_progress=progress.append)
    return transcript, decoded, progress


def _offset_of(audio: np.ndarray, clip: np.ndarray, end_s: float) -> int:
    """Where ``clip`` lies in ``audio``, given that it ends at ``end_s`` (rounded to the millisecond)."""
    guess = round(end_s * SAMPLE_RATE) - clip.size
    for start in sorted(range(guess - 16, guess + 17), key=lambda s: abs(s - guess)):
        if 0 <= start and np.array_equal(audio[start:start + clip.size], clip):
            return start
    raise AssertionError(f"decoded clip ending near {end_s} s is not a slice of the input")


def test_segments_are_ordered_inside_the_audio_and_at_most_30_s(long_run, recording):
    transcript, decoded, _ = long_run
    duration_s = recording[0].size / SAMPLE_RATE
    segments = transcript.segments
    assert transcript.duration_s == pytest.approx(duration_s, abs=1e-3)
    assert len(segments) == len(decoded) >= 6
    assert [s.id for s in segments] == list(range(len(segments)))
    assert all(clip.size <= MAX_CLIP_SAMPLES for clip in decoded)
    for segment in segments:
        assert 0.0 <= segment.start_s < segment.end_s <= duration_s
        assert segment.end_s - segment.start_s <= MAX_CLIP_S
        assert 1 <= segment.n_tokens <= FAST.max_new_tokens
    for before, after in itertools.pairwise(segments):
        assert before.end_s <= after.start_s  # monotonic, no overlap
    assert transcript.text == " ".join(s.text for s in segments if s.text)


def test_segments_map_back_to_the_audio_they_were_decoded_from(long_run, recording):
    audio, regions, (stretch_start, stretch_end) = recording
    transcript, decoded, _ = long_run
    all_speech = [span for region in regions for span in region["speech"]] + [(stretch_start, stretch_end)]
    covered = np.zeros(audio.size, dtype=bool)
    n_forced = 0
    for segment, clip in zip(transcript.segments, decoded):
        start = _offset_of(audio, clip, segment.end_s)
        # The segment starts where its clip starts, or (after a forced split) after the shared overlap.
        lead_s = segment.start_s - start / SAMPLE_RATE
        assert -1e-3 <= lead_s <= FAST.chunk_overlap_s + 1e-3
        n_forced += lead_s > 0.5
        covered[start:start + clip.size] = True
        # Every decoded clip holds speech: silence between the clips is not sent to the model.
        assert any(s < start + clip.size and start < e for s, e in all_speech), segment
        # A clip that holds a placed clip's speech stays within that clip and its pauses.
        touched = [i for i, r in enumerate(regions) if any(s < start + clip.size and start < e for s, e in r["speech"])]
        if touched:
            assert touched == list(range(touched[0], touched[-1] + 1))
            assert start >= regions[touched[0]]["start"] - int(0.3 * SAMPLE_RATE)
    assert n_forced >= 2  # the 71 s stretch was cut twice, with overlap
    for region in regions:  # every clip's speech is decoded
        assert region["speech"]
        for s, e in region["speech"]:
            assert covered[s + TOLERANCE:e - TOLERANCE].all(), (region["name"], s / SAMPLE_RATE, e / SAMPLE_RATE)
    assert covered[stretch_start + TOLERANCE:stretch_end - TOLERANCE].all()


def test_segment_boundaries_fall_in_pauses_except_inside_the_long_stretch(long_run, recording):
    _, regions, (stretch_start, stretch_end) = recording
    transcript, _, _ = long_run
    placed_speech = [span for region in regions for span in region["speech"]]
    inside_stretch = 0
    for segment in transcript.segments:
        for boundary in (round(segment.start_s * SAMPLE_RATE), round(segment.end_s * SAMPLE_RATE)):
            if stretch_start + TOLERANCE < boundary < stretch_end - TOLERANCE:
                inside_stretch += 1
                continue
            assert not any(s + TOLERANCE < boundary < e - TOLERANCE for s, e in placed_speech), boundary / SAMPLE_RATE
    assert inside_stretch >= 4  # two forced cuts, each the end of one segment and the start of the next


def test_progress_sums_to_the_duration(long_run, recording):
    _, _, progress = long_run
    assert progress and all(step >= 0 for step in progress)
    assert sum(progress) == pytest.approx(recording[0].size / SAMPLE_RATE, abs=1e-6)


def test_generator_yields_the_same_segments(tiny_model, long_run, recording):
    transcript, _, _ = long_run
    generator = tiny_model.transcribe_segments(recording[0], options=FAST)
    assert iter(generator) is generator
    streamed = tuple(generator)
    # Decoded in smaller batches, so the mean log-probabilities may differ in the last float32 bits.
    key = lambda s: (s.id, s.start_s, s.end_s, s.text, s.n_tokens, s.truncated)  # noqa: E731
    assert [key(s) for s in streamed] == [key(s) for s in transcript.segments]
    assert [s.avg_logprob for s in streamed] == pytest.approx([s.avg_logprob for s in transcript.segments], abs=1e-5)


def test_generator_yields_before_decoding_everything(tiny_model, recording, monkeypatch):
    audio = recording[0][: 100 * SAMPLE_RATE]
    decoded = _spy(monkeypatch, tiny_model)
    generator = tiny_model.transcribe_segments(audio, options=FAST.replace(batch_size=1))
    next(generator)
    n_first = len(decoded)
    rest = list(generator)
    assert n_first < 1 + len(rest)


def test_pure_silence_gives_no_segments_and_empty_text(tiny_model, monkeypatch):
    decoded = _spy(monkeypatch, tiny_model)
    progress: list[float] = []
    for seconds in (5.0, 45.0):
        result = tiny_model.transcribe(np.zeros(int(seconds * SAMPLE_RATE), np.float32), options=FAST,
                                       on_progress=progress.append)
        assert result.segments == () and result.text == ""
        assert result.duration_s == seconds
    # Faint noise over 30 s goes through the VAD, which finds no speech.
    noise = np.random.default_rng(0).normal(0, 1e-3, 40 * SAMPLE_RATE).astype(np.float32)
    result = tiny_model.transcribe(noise, options=FAST, on_progress=progress.append)
    assert result.segments == () and result.text == ""
    assert decoded == []
    assert sum(progress) == pytest.approx(5.0 + 45.0 + 40.0)
    assert list(tiny_model.transcribe_segments(np.zeros(SAMPLE_RATE, np.float32), options=FAST)) == []


def test_without_vad_fixed_30_s_windows(tiny_model, recording, monkeypatch):
    audio = recording[0][: 75 * SAMPLE_RATE]

    def no_vad(options):
        raise AssertionError("the VAD must not run with vad=False")

    monkeypatch.setattr(tiny_model, "vad", no_vad)
    decoded = _spy(monkeypatch, tiny_model)
    result = tiny_model.transcribe(audio, options=FAST.replace(vad=False))
    assert [clip.size / SAMPLE_RATE for clip in decoded] == [30.0, 30.0, 17.0]
    assert [(s.start_s, s.end_s) for s in result.segments] == [(0.0, 30.0), (30.0, 59.0), (59.0, 75.0)]
    for segment, clip in zip(result.segments, decoded):
        start = _offset_of(audio, clip, segment.end_s)
        assert start == round((segment.start_s - (1.0 if segment.id else 0.0)) * SAMPLE_RATE)


def test_cyrillic_script_leaves_no_latin_letters(tiny_model, clips, monkeypatch):
    latin = "Bugun havo juda yaxshi, o'g'lim maktabga bordi. Shoshilmang!"
    _spy(monkeypatch, tiny_model, replace_text=latin)
    long_audio = np.concatenate([load_audio(clips[0]["path"]), np.zeros(3 * SAMPLE_RATE, np.float32)] * 5)
    for audio in (clips[0]["path"], long_audio):
        result = tiny_model.transcribe(audio, options=FAST.replace(script="cyrillic"))
        assert result.segments
        for text in [result.text] + [s.text for s in result.segments]:
            assert not re.search(r"[A-Za-z]", text), text
            assert re.search(r"[\u0400-\u04FF]", text)
    assert tiny_model.transcribe(clips[0]["path"], options=FAST).text == latin  # the default script is as written


# ------------------------------------------------------------------------------ plan(), no model


def test_plan_without_a_model():
    options = TranscribeOptions()
    speech = np.full(10 * SAMPLE_RATE, 0.1, np.float32)
    assert pipeline.plan(speech, options, None) == [Chunk(0, speech.size)]
    assert pipeline.plan(np.zeros(0, np.float32), options, None) == []
    assert pipeline.plan(np.full(40 * SAMPLE_RATE, 1e-5, np.float32), options, None) == []  # -100 dBFS
    long = np.full(40 * SAMPLE_RATE, 0.1, np.float32)
    # No VAD given: fixed windows, the second sharing the overlap with the first.
    assert pipeline.plan(long, options, None) == [Chunk(0, MAX_CLIP_SAMPLES),
                                                  Chunk(29 * SAMPLE_RATE, long.size, SAMPLE_RATE)]


def test_streamed_text_follows_the_script(tiny_model, clips, monkeypatch):
    from ovoz.decoding import Decoded

    def fake_stream(clip, max_new_tokens, *, prompt, on_text, stats=None):
        for word in ("salom ", "dunyo"):
            on_text(word)
        return Decoded("salom dunyo", (1, 2, 3), -0.5, True)

    monkeypatch.setattr(tiny_model.decoder, "stream", fake_stream)
    pieces: list[str] = []
    result = tiny_model.transcribe(clips[0]["path"], options=FAST.replace(script="cyrillic"), on_text=pieces.append)
    assert result.text == "салом дунё"
    assert "".join(pieces).strip() == result.text


def test_one_input_failing_the_shared_batch_fails_alone(tiny_model, clips, monkeypatch):
    """transcribe_batch: an error raised for the whole batch is retried input by input; only the culprit fails."""
    import numpy as np

    from ovoz.errors import DecodingError

    good = load_audio(clips[0]["path"])[: 3 * SAMPLE_RATE]
    bad = np.full(2 * SAMPLE_RATE + 1, 0.01, np.float32)  # a length the fake below refuses
    real = tiny_model.decoder.decode

    def decode(batch, caps, **kwargs):
        if any(len(c) == len(bad) for c in batch):
            raise RuntimeError("kernel failure")
        return real(batch, caps, **kwargs)

    monkeypatch.setattr(tiny_model.decoder, "decode", decode)
    results = tiny_model.transcribe_batch([good, bad, good], options=FAST)
    assert isinstance(results[1], DecodingError) and "kernel failure" in str(results[1])
    assert [type(r).__name__ for r in results] == ["Transcript", "DecodingError", "Transcript"]
    assert results[0].text == results[2].text
