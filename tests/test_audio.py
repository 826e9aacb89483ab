"""Decoding every input kind to 16 kHz mono float32, and a typed error for every bad one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ovoz.audio import decode_audio, load_audio, probe_duration
from ovoz.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    EmptyAudioError,
    NoAudioStreamError,
)

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def encoded(clip_22k, tmp_path_factory) -> dict[str, Path]:
    """The 22.05 kHz clip in every container/codec users send, made with ffmpeg."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path_factory.mktemp("formats")
    files = {
        "flac": ["-i", clip_22k, str(out / "a.flac")],
        "ogg": ["-i", clip_22k, "-c:a", "libvorbis", str(out / "a.ogg")],
        "opus": ["-i", clip_22k, "-c:a", "libopus", str(out / "a.opus")],
        "mp3": ["-i", clip_22k, str(out / "a.mp3")],
        "m4a": ["-i", clip_22k, "-c:a", "aac", str(out / "a.m4a")],
        "stereo44k.wav": ["-i", clip_22k, "-ac", "2", "-ar", "44100", str(out / "stereo44k.wav")],
        "mp4": ["-f", "lavfi", "-i", "color=c=black:s=32x32:d=4.4", "-i", clip_22k, "-shortest",
                "-c:v", "libx264", "-c:a", "aac", str(out / "a.mp4")],
        "mkv": ["-f", "lavfi", "-i", "color=c=black:s=32x32:d=4.4", "-i", clip_22k, "-shortest",
                "-c:v", "libx264", "-c:a", "libvorbis", str(out / "a.mkv")],
        "webm": ["-f", "lavfi", "-i", "color=c=black:s=32x32:d=4.4", "-i", clip_22k, "-shortest",
                 "-c:v", "libvpx", "-c:a", "libopus", str(out / "a.webm")],
        "silent.mp4": ["-f", "lavfi", "-i", "color=c=black:s=32x32:d=1", "-c:v", "libx264", str(out / "silent.mp4")],
    }
    paths = {}
    for name, args in files.items():
        ffmpeg(*args)
        paths[name] = Path(args[-1])
    return paths


def test_wav_22k_is_resampled_to_16k(clip_22k):
    decoded = decode_audio(clip_22k)
    info = soundfile.info(clip_22k)
    assert decoded.source_sample_rate == 22050 and decoded.sample_rate == 16000
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.duration_s == pytest.approx(info.duration, abs=0.002)
    assert 0.01 < np.abs(decoded.samples).max() <= 1.0


def test_resampling_preserves_the_signal(clip_22k):
    """Down- then up-sampling through ovoz gives back the band-limited original (a real resampler, not a pad)."""
    original, rate = soundfile.read(clip_22k, dtype="float32")
    at_16k = load_audio(clip_22k)
    back = load_audio((at_16k, 16000), sample_rate=rate)
    n = min(len(original), len(back))
    from scipy.signal import butter, sosfiltfilt

    low = butter(8, 7000, fs=rate, output="sos")  # compare below the 8 kHz Nyquist of 16 kHz
    a, b = sosfiltfilt(low, original[:n]), sosfiltfilt(low, back[:n])
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.05


def test_16k_wav_passes_through_unchanged(clip_16k):
    original, rate = soundfile.read(clip_16k, dtype="float32")
    assert rate == 16000
    np.testing.assert_array_equal(load_audio(clip_16k), original)


@pytest.mark.parametrize("name", ["flac", "ogg", "opus", "mp3", "m4a", "stereo44k.wav", "mp4", "mkv", "webm"])
def test_every_format_decodes(encoded, clip_22k, name):
    reference = load_audio(clip_22k)
    decoded = decode_audio(encoded[name])
    assert decoded.sample_rate == 16000 and decoded.samples.dtype == np.float32
    # Lossy codecs and containers add priming/padding of tens of ms, never more.
    assert abs(len(decoded.samples) - len(reference)) < 0.1 * 16000
    if name == "stereo44k.wav":
        assert decoded.source_channels == 2 and decoded.source_sample_rate == 44100
    if name in ("flac", "stereo44k.wav"):  # lossless: the same signal
        n = min(len(reference), len(decoded.samples))
        assert np.corrcoef(reference[:n], decoded.samples[:n])[0, 1] > 0.999


def test_bytes_input_matches_file(encoded):
    data = encoded["mp3"].read_bytes()
    np.testing.assert_allclose(load_audio(data), load_audio(encoded["mp3"]), atol=1e-6)


def test_array_inputs():
    tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)
    assert len(load_audio((tone, 8000))) == 16000
    assert len(load_audio({"array": tone, "sampling_rate": 8000})) == 16000
    stereo = np.stack([tone, tone], axis=1)
    np.testing.assert_allclose(load_audio((stereo, 8000)), load_audio((tone, 8000)), atol=1e-6)
    ints = (tone * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio((ints, 8000)), load_audio((tone, 8000)), atol=1e-3)
    assert len(load_audio(np.zeros(1600, np.float32))) == 1600  # bare arrays are taken as 16 kHz


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda d: d / "missing.wav", AudioFileNotFoundError),
        (lambda d: d, AudioFileNotFoundError),
        (lambda d: _write(d / "empty.wav", b""), EmptyAudioError),
        (lambda d: _write(d / "notes.txt", "bu audio emas\n".encode()), AudioDecodeError),
        (lambda d: _write(d / "noise.bin", np.random.default_rng(0).bytes(5000)), AudioDecodeError),
    ],
    ids=["missing", "directory", "empty", "text-file", "random-bytes"],
)
def test_bad_files_raise_typed_errors_naming_the_file(tmp_path, make, error):
    path = make(tmp_path)
    with pytest.raises(error) as caught:
        decode_audio(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, AudioError)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_no_audio_stream(encoded):
    with pytest.raises(NoAudioStreamError, match="no audio stream"):
        decode_audio(encoded["silent.mp4"])


@pytest.mark.parametrize("name", ["stereo44k.wav", "flac", "mp3"])
def test_truncated_files_are_refused(encoded, tmp_path, name):
    data = encoded[name].read_bytes()
    cut = tmp_path / f"half.{name.split('.')[-1]}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode_audio(cut)


def test_corrupt_container_is_refused(encoded, tmp_path):
    data = encoded["m4a"].read_bytes()
    cut = tmp_path / "half.m4a"
    cut.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: unreadable
    with pytest.raises(AudioDecodeError, match=str(cut)):
        decode_audio(cut)


def test_bad_array_inputs():
    with pytest.raises(EmptyAudioError):
        decode_audio(np.zeros(0, np.float32))
    with pytest.raises(AudioDecodeError, match="NaN"):
        decode_audio(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioDecodeError, match="channels, samples"):
        decode_audio((np.zeros((2, 16000), np.float32), 16000))
    with pytest.raises(EmptyAudioError):
        decode_audio(b"")
    with pytest.raises(AudioDecodeError, match="unsupported"):
        decode_audio(12345)


def test_probe_duration(clip_22k, encoded, tmp_path):
    assert probe_duration(clip_22k) == pytest.approx(soundfile.info(clip_22k).duration, abs=1e-3)
    assert probe_duration(encoded["m4a"]) == pytest.approx(4.43, abs=0.1)
    assert probe_duration(tmp_path / "missing.wav") is None


# ---------------------------------------------------------------- issue 13: fail early, never hang

@pytest.mark.timeout(10)
def test_a_fifo_is_refused_by_its_type_without_being_opened(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: ovoz must not even try (no writer ever comes)."""
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioDecodeError, match="FIFO") as caught:
        decode_audio(fifo)
    assert str(fifo) in str(caught.value) and "regular file" in str(caught.value)
    assert probe_duration(fifo) is None
    with pytest.raises(AudioDecodeError, match="character device"):
        decode_audio("/dev/null")


@pytest.mark.parametrize("rate", [0, -16000, 10**9, 999, 16000.5, "fast"])
def test_implausible_sample_rates_are_typed_errors(rate):
    with pytest.raises(AudioDecodeError, match="sample_rate=") as caught:
        decode_audio((np.zeros(16000, np.float32), rate))
    assert "between 1000 and 768000" in str(caught.value)


@pytest.mark.parametrize("n", [1, 16, 100, 639])
def test_audio_shorter_than_one_audio_token_is_padded_with_silence(n, caplog):
    from ovoz.audio import MIN_SAMPLES

    samples = np.full(n, 0.25, np.float32)
    with caplog.at_level("WARNING", logger="ovoz.audio"):
        decoded = decode_audio(samples)
    assert len(decoded.samples) == MIN_SAMPLES == 640
    np.testing.assert_array_equal(decoded.samples[:n], samples)
    assert not decoded.samples[n:].any()
    assert "padded with silence" in caplog.text
    assert len(decode_audio(np.zeros(MIN_SAMPLES, np.float32)).samples) == MIN_SAMPLES  # no padding at the minimum


def test_a_one_sample_wav_file_decodes_padded(tmp_path):
    path = tmp_path / "one.wav"
    soundfile.write(path, np.array([0.5], np.float32), 44100)
    decoded = decode_audio(path)
    assert len(decoded.samples) == 640 and decoded.source_sample_rate == 44100


def test_block_decoding_equals_decoding_whole(tmp_path, monkeypatch):
    """48 kHz stereo is downmixed and resampled block by block; the result equals the one-shot conversion."""
    import soxr

    import ovoz.audio

    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((48000 * 3 + 77, 2)) * 0.1).astype(np.float32)
    path = tmp_path / "stereo48k.wav"
    soundfile.write(path, stereo, 48000, subtype="FLOAT")
    whole = soxr.resample(stereo.mean(axis=1, dtype=np.float32), 48000, 16000, quality="HQ")
    monkeypatch.setattr(ovoz.audio, "BLOCK_FRAMES", 4096)  # many blocks
    decoded = decode_audio(path)
    assert decoded.source_channels == 2 and decoded.source_sample_rate == 48000
    np.testing.assert_allclose(decoded.samples, whole, atol=1e-6)
    flac = tmp_path / "stereo48k.flac"
    soundfile.write(flac, stereo, 48000)
    assert len(decode_audio(flac).samples) == len(whole)


@needs_ffmpeg
def test_several_audio_streams_warn_and_use_the_first(tmp_path, caplog):
    path = tmp_path / "two.mkv"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=16000:d=1", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=1",
           "-map", "0", "-map", "1", "-metadata:s:a:1", "language=rus", "-c:a", "flac", str(path))
    with caplog.at_level("WARNING", logger="ovoz.audio"):
        samples = load_audio(path)
    assert np.abs(samples).max() > 0.1  # the sine (first stream), not the silence
    assert "2 audio streams" in caplog.text and "language rus" in caplog.text
    single = tmp_path / "one.mkv"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=16000:d=1", "-c:a", "flac", str(single))
    caplog.clear()
    with caplog.at_level("WARNING", logger="ovoz.audio"):
        load_audio(single)
    assert "audio streams" not in caplog.text
