"""VAD chunking: pure span logic on synthetic probabilities, then the real Silero model on real Uzbek clips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ovoz.errors import ConfigError, DependencyError
from ovoz.types import MAX_CLIP_SAMPLES, SAMPLE_RATE, TranscribeOptions
from ovoz.vad import (
    FRAME_SAMPLES,
    Chunk,
    VADOptions,
    chunks_from_probs,
    fixed_chunks,
    merge_overlap,
    plan_chunks,
    speech_spans,
)

CLIPS = Path("/work/shared/data/uz_clips")
FPS = SAMPLE_RATE / FRAME_SAMPLES  # frames per second (31.25)


def frames(seconds: float) -> int:
    return int(round(seconds * FPS))


def make_probs(total_s: float, speech: list[tuple[float, float]], level: float = 0.9, floor: float = 0.02):
    """Per-frame probabilities with speech at ``level`` in the given (start_s, end_s) regions."""
    probs = np.full(frames(total_s), floor, dtype=np.float32)
    for start_s, end_s in speech:
        probs[frames(start_s):frames(end_s)] = level
    return probs, len(probs) * FRAME_SAMPLES


def assert_valid_chunks(chunks: list[Chunk], n_samples: int) -> None:
    """Invariants every chunk plan must satisfy."""
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= n_samples
        assert chunk.n_samples <= MAX_CLIP_SAMPLES
    for prev, nxt in zip(chunks, chunks[1:]):
        assert prev.start < nxt.start and prev.end < nxt.end
        assert nxt.start >= prev.end - nxt.overlap_before  # overlap only where declared
        if nxt.overlap_before:
            assert nxt.start == prev.end - nxt.overlap_before
        else:
            assert nxt.start >= prev.end


def covered(chunks: list[Chunk], n_samples: int) -> np.ndarray:
    mask = np.zeros(n_samples, dtype=bool)
    for chunk in chunks:
        mask[chunk.start:chunk.end] = True
    return mask


def speech_mask(probs: np.ndarray, n_samples: int, threshold: float = 0.5) -> np.ndarray:
    return np.repeat(probs >= threshold, FRAME_SAMPLES)[:n_samples]


# ------------------------------------------------------------------------------------- pure logic


def test_speech_spans_hysteresis_blips_and_short_pauses():
    probs, n = make_probs(10.0, [(1.0, 3.0), (3.05, 4.0), (6.0, 6.05), (8.0, 9.0)])
    probs[frames(2.0)] = 0.4  # between exit (0.35) and entry (0.5): speech continues
    spans = speech_spans(probs, n)
    # 3.0-3.05 pause (< 0.1 s) merged, 6.0-6.05 blip (< 0.25 s) dropped
    assert spans == [(frames(1.0) * FRAME_SAMPLES, frames(4.0) * FRAME_SAMPLES),
                     (frames(8.0) * FRAME_SAMPLES, frames(9.0) * FRAME_SAMPLES)]


def test_speech_spans_end_clamped_to_audio():
    probs = np.full(10, 0.9, dtype=np.float32)
    assert speech_spans(probs, 9 * FRAME_SAMPLES + 100) == [(0, 9 * FRAME_SAMPLES + 100)]
    assert speech_spans(np.zeros(0), 0) == []


def test_pauses_are_cut_and_neighbours_merged_up_to_target():
    speech = [(1, 6), (7, 12), (13, 18), (19, 24), (30, 35), (36, 41)]
    probs, n = make_probs(50.0, speech)
    chunks = chunks_from_probs(probs, n, target_s=20.0)
    assert_valid_chunks(chunks, n)
    assert [(round(c.start_s), round(c.end_s)) for c in chunks] == [(1, 18), (19, 24), (30, 41)]
    assert all(c.overlap_before == 0 for c in chunks)
    assert all(c.duration_s <= 20.0 + 2 * 0.2 for c in chunks)
    assert not (speech_mask(probs, n) & ~covered(chunks, n)).any()


def test_target_changes_the_grouping():
    speech = [(1 + 3 * i, 3 + 3 * i) for i in range(10)]  # 2 s of speech, 1 s pauses
    probs, n = make_probs(35.0, speech)
    for target_s in (5.0, 10.0, 20.0):
        chunks = chunks_from_probs(probs, n, target_s=target_s)
        assert_valid_chunks(chunks, n)
        assert all(c.duration_s <= target_s + 0.4 for c in chunks)
        assert not (speech_mask(probs, n) & ~covered(chunks, n)).any()
    assert len(chunks_from_probs(probs, n, target_s=5.0)) > len(chunks_from_probs(probs, n, target_s=20.0))


def test_padding_added_but_never_crosses_the_middle_of_a_pause():
    probs, n = make_probs(10.0, [(2.0, 4.0), (4.3, 8.0)])
    spans = speech_spans(probs, n)
    chunks = plan_chunks(spans, n, target_s=1.0, options=VADOptions(speech_pad_s=0.2))
    assert len(chunks) == 2
    first, second = chunks
    assert first.start == spans[0][0] - int(0.2 * SAMPLE_RATE)
    assert first.end == second.start == (spans[0][1] + spans[1][0]) // 2  # 0.3 s pause < 2 pads
    assert second.end == spans[1][1] + int(0.2 * SAMPLE_RATE)


def test_long_silences_are_not_merged_and_are_dropped():
    probs, n = make_probs(60.0, [(1.0, 3.0), (10.0, 12.0), (50.0, 52.0)])
    chunks = chunks_from_probs(probs, n, target_s=20.0)
    assert len(chunks) == 3  # gaps of 7 s and 38 s exceed max_merge_gap_s
    assert covered(chunks, n).sum() / SAMPLE_RATE < 6 + 3 * 0.4 + 0.1  # frames are 32 ms


def test_short_chunk_may_grow_past_target_to_absorb_neighbour():
    probs, n = make_probs(30.0, [(1.0, 1.5), (2.0, 21.0)])
    chunks = chunks_from_probs(probs, n, target_s=15.0)
    assert len(chunks) == 1 and chunks[0].duration_s <= 30.0


def test_70s_without_pause_forced_splits_with_overlap_at_quietest_frame():
    probs, n = make_probs(80.0, [(5.0, 75.0)], level=0.95)
    dip = frames(5.0 + 26.0)
    probs[dip - 1:dip + 2] = 0.55  # still speech, but the best place to cut
    chunks = chunks_from_probs(probs, n, target_s=20.0, overlap_s=1.0)
    assert_valid_chunks(chunks, n)
    assert len(chunks) == 3
    assert chunks[0].overlap_before == 0
    assert [c.overlap_before for c in chunks[1:]] == [SAMPLE_RATE, SAMPLE_RATE]
    assert chunks[0].end == dip * FRAME_SAMPLES + FRAME_SAMPLES // 2
    assert all(c.n_samples <= MAX_CLIP_SAMPLES for c in chunks)
    assert not (speech_mask(probs, n) & ~covered(chunks, n)).any()


def test_forced_split_without_probabilities_cuts_at_the_limit():
    n = 100 * SAMPLE_RATE
    chunks = plan_chunks([(0, n)], n, target_s=20.0, overlap_s=0.5)
    assert_valid_chunks(chunks, n)
    assert [c.n_samples for c in chunks[:-1]] == [MAX_CLIP_SAMPLES] * (len(chunks) - 1)
    assert chunks[-1].end == n
    assert covered(chunks, n).all()


def test_randomised_invariants():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n_frames = int(rng.integers(100, 6000))
        probs = np.clip(np.repeat(rng.random(n_frames // 20 + 1), 20)[:n_frames] * 1.3 - 0.1, 0, 1)
        probs += rng.normal(0, 0.05, n_frames)
        n = n_frames * FRAME_SAMPLES - int(rng.integers(0, FRAME_SAMPLES))
        target_s = float(rng.uniform(5, 30))
        overlap_s = float(rng.uniform(0, 2))
        chunks = chunks_from_probs(probs, n, target_s=target_s, overlap_s=overlap_s)
        assert_valid_chunks(chunks, n)
        spans = speech_spans(probs, n)
        mask = covered(chunks, n)
        assert all(mask[s:e].all() for s, e in spans)
        assert all(mask[c.start:c.end].any() for c in chunks)


def test_pure_silence_gives_no_chunks():
    probs, n = make_probs(40.0, [])
    assert chunks_from_probs(probs, n) == []


def test_fixed_chunks_cover_with_overlap():
    n = 70 * SAMPLE_RATE + 123
    chunks = fixed_chunks(n, overlap_s=1.0)
    assert_valid_chunks(chunks, n)
    assert chunks[0] == Chunk(0, MAX_CLIP_SAMPLES, 0)
    assert chunks[1].start == MAX_CLIP_SAMPLES - SAMPLE_RATE and chunks[1].overlap_before == SAMPLE_RATE
    assert chunks[-1].end == n and covered(chunks, n).all()
    assert fixed_chunks(0) == []
    assert fixed_chunks(5 * SAMPLE_RATE) == [Chunk(0, 5 * SAMPLE_RATE, 0)]
    assert len(fixed_chunks(2 * MAX_CLIP_SAMPLES - SAMPLE_RATE)) == 2  # no chunk made only of overlap


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError):
        VADOptions(threshold=1.5)
    with pytest.raises(ConfigError):
        plan_chunks([], 10, target_s=40.0)
    with pytest.raises(ConfigError):
        fixed_chunks(10, window_s=31.0)


@pytest.mark.parametrize(
    ("prev", "nxt", "expected"),
    [
        ("men uyga bordim va u yerda", "u yerda kitob o'qidim", ("men uyga bordim va u yerda", "kitob o'qidim")),
        ("Salom, Dunyo!", "salom dunyo qalaysan", ("Salom, Dunyo!", "qalaysan")),
        ("biz oʻzbek tilida", "o'zbek tilida gapiramiz", ("biz oʻzbek tilida", "gapiramiz")),
        ("bir ikki uch", "toʻrt besh", ("bir ikki uch", "toʻrt besh")),
        ("", "hech narsa", ("", "hech narsa")),
        ("hammasi", "", ("hammasi", "")),
        # the earlier chunk's last word was cut by the boundary: keep the later chunk's full word
        ("men uyga bordim va u yer", "va u yerda kitob", ("men uyga bordim va u", "yerda kitob")),
        # the later chunk's first word is a fragment
        ("kecha men uyga bordim", "ha uyga bordim keyin", ("kecha men uyga bordim", "keyin")),
        # one shared word with a mismatch is not enough
        ("bir ikki", "ikkx uch", ("bir ikki", "ikkx uch")),
    ],
)
def test_merge_overlap(prev, nxt, expected):
    assert merge_overlap(prev, nxt) == expected


def test_merge_overlap_respects_max_words():
    prev = "a b c d e f g h i j"
    assert merge_overlap(prev, "a b c d e f g h i j k", max_words=4) == (prev, "a b c d e f g h i j k")
    assert merge_overlap(prev, "a b c d e f g h i j k", max_words=10) == (prev, "k")


# ------------------------------------------------------------------------------ real Silero model


def _load_16k(path: Path) -> np.ndarray:
    from ovoz.audio import load_audio  # 16 kHz mono float32, resampled as the pipeline does

    return load_audio(path)


@pytest.fixture(scope="module")
def vad():
    pytest.importorskip("silero_vad")
    from ovoz.vad import SileroVAD

    return SileroVAD()


@pytest.fixture(scope="module")
def long_audio(vad):
    """All clips joined with 2-4 s of faint noise; each clip's speech spans from silero's own reference."""
    import torch
    from silero_vad.utils_vad import get_speech_timestamps_from_probs

    if not (CLIPS / "manifest.jsonl").exists():
        pytest.skip("real clips not available")
    rng = np.random.default_rng(1)
    entries = [json.loads(line) for line in (CLIPS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    pieces, clips = [], []
    offset = 0
    for i, entry in enumerate(entries):
        gap = int(rng.uniform(2.0, 4.0) * SAMPLE_RATE)
        pieces.append((rng.normal(0, 1e-4, gap)).astype(np.float32))
        offset += gap
        audio = _load_16k(CLIPS / entry["path"])
        with torch.inference_mode():  # one exact pass per clip, spans by silero's own logic (not ours)
            probs = vad._model.audio_forward(torch.from_numpy(audio)[None], SAMPLE_RATE)[0].tolist()
        reference = get_speech_timestamps_from_probs(probs, sampling_rate=SAMPLE_RATE,
                                                     audio_length_samples=audio.size)
        clips.append({"start": offset, "end": offset + audio.size,
                      "speech": [(offset + r["start"], offset + r["end"]) for r in reference]})
        pieces.append(audio)
        offset += audio.size
    pieces.append(np.zeros(3 * SAMPLE_RATE, dtype=np.float32))
    return np.concatenate(pieces), clips


def test_silero_chunks_fall_in_silences_and_cover_every_clip(vad, long_audio):
    audio, clips = long_audio
    chunks = vad.speech_chunks(audio, TranscribeOptions())
    assert_valid_chunks(chunks, audio.size)
    assert len(chunks) >= 3
    mask = covered(chunks, audio.size)
    all_speech = [span for clip in clips for span in clip["speech"]]
    assert all(clip["speech"] for clip in clips)
    for start, end in all_speech:  # every bit of reference speech is inside some chunk
        assert mask[start:end].all(), (start, end)
    tolerance = int(0.1 * SAMPLE_RATE)
    for chunk in chunks:
        assert chunk.overlap_before == 0  # no clip is 30 s long: no forced split
        for boundary in (chunk.start, chunk.end):  # cut in pauses, never through speech
            assert not any(s + tolerance < boundary < e - tolerance for s, e in all_speech), boundary
        # the chunk maps back to consecutive clips, and holds speech of each of them
        touched = [i for i, c in enumerate(clips) if any(s < chunk.end and chunk.start < e for s, e in c["speech"])]
        assert touched and touched == list(range(touched[0], touched[-1] + 1))
        assert chunk.start >= clips[touched[0]]["start"] - int(0.3 * SAMPLE_RATE)
        assert chunk.end <= clips[touched[-1]]["end"] + int(0.3 * SAMPLE_RATE)
    # most of the inserted silence is dropped
    gaps = np.ones(audio.size, dtype=bool)
    for clip in clips:
        gaps[clip["start"]:clip["end"]] = False
    assert (mask & gaps).sum() < 0.5 * gaps.sum()


def test_parallel_streams_agree_with_sequential_pass(vad, long_audio):
    from ovoz.vad import SileroVAD

    audio = long_audio[0][:45 * SAMPLE_RATE]  # 3 streams; the exact pass is the slow part
    fast = vad.frame_probs(audio)
    exact = SileroVAD(stream_s=None).frame_probs(audio)
    assert fast.shape == exact.shape == (-(-audio.size // FRAME_SAMPLES),)
    assert fast.dtype == np.float32 and 0.0 <= fast.min() and fast.max() <= 1.0
    assert np.mean((fast >= 0.5) != (exact >= 0.5)) < 0.02


def test_silero_handles_short_and_empty_audio(vad):
    assert vad.frame_probs(np.zeros(0, dtype=np.float32)).shape == (0,)
    assert vad.speech_chunks(np.zeros(100, dtype=np.float32)) == []
    assert vad.speech_chunks(np.zeros(5 * SAMPLE_RATE, dtype=np.float32)) == []


def test_missing_silero_raises_dependency_error(monkeypatch):
    from ovoz.vad import SileroVAD

    monkeypatch.setitem(sys.modules, "silero_vad", None)
    with pytest.raises(DependencyError, match="pip install silero-vad"):
        SileroVAD()
