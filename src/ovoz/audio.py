"""Decode any audio input to 16 kHz mono float32.

Files and bytes are decoded with soundfile (libsndfile: wav, flac, ogg/vorbis/opus, mp3) and, for
everything else (m4a/aac, the audio track of mp4/mkv/webm, ...), with PyAV (FFmpeg). Resampling is
done once, with soxr, whatever the decoder.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from .errors import AudioDecodeError, AudioFileNotFoundError, EmptyAudioError, NoAudioStreamError
from .types import SAMPLE_RATE

logger = logging.getLogger(__name__)

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, tuple, dict]
"""A path, encoded bytes, a float array at 16 kHz, ``(array, sample_rate)`` or ``{"array", "sampling_rate"}``."""

AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .ogg .oga .opus .mp3 .m4a .aac .wma .aif .aiff .mp4 .mkv .webm .mov .avi .mka .amr".split()
)
"""File suffixes treated as audio when a folder is scanned."""


@dataclass(frozen=True)
class DecodedAudio:
    """Samples at ``sample_rate`` (mono float32) plus what the input was."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode ``source`` to mono float32 samples at ``sample_rate`` Hz (see :func:`decode_audio`)."""
    return decode_audio(source, sample_rate).samples


def decode_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> DecodedAudio:
    """Decode ``source`` to mono float32 at ``sample_rate`` Hz.

    ``source`` is a file path, the encoded bytes of a file, a float array already at 16 kHz,
    ``(array, sample_rate)``, or a Hugging Face style ``{"array": ..., "sampling_rate": ...}``.
    Arrays may be ``(n,)`` or ``(n, channels)``. Raises a subclass of :class:`ovoz.errors.AudioError`
    naming the input when it cannot be decoded or holds no samples.
    """
    if isinstance(source, dict):
        if "array" not in source or "sampling_rate" not in source:
            raise AudioDecodeError("<dict>", "a dict input needs the keys 'array' and 'sampling_rate'.")
        source = (source["array"], source["sampling_rate"])
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioDecodeError("<tuple>", "give audio as (array, sample_rate).")
        array, source_rate = source
        return _from_array(np.asarray(array), int(source_rate), sample_rate, "<array>")
    if isinstance(source, np.ndarray):
        return _from_array(source, SAMPLE_RATE, sample_rate, "<array>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyAudioError(source, "no bytes were given.")
        samples, rate, channels = _decode_file(io.BytesIO(data), source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AudioFileNotFoundError(path, "no such file. Check the path.")
        if path.is_dir():
            raise AudioFileNotFoundError(path, "is a directory; give an audio file (the CLI accepts folders).")
        if path.stat().st_size == 0:
            raise EmptyAudioError(path, "the file is empty (0 bytes).")
        samples, rate, channels = _decode_file(path, path)
    else:
        raise AudioDecodeError(
            repr(type(source).__name__),
            "unsupported audio input type; give a path, bytes, a float array, or (array, sample_rate).",
        )
    return _finish(samples, rate, channels, sample_rate, source)


def _from_array(array: np.ndarray, source_rate: int, target_rate: int, name: str) -> DecodedAudio:
    if source_rate <= 0:
        raise AudioDecodeError(name, f"sample_rate={source_rate} is not positive.")
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number):
        raise AudioDecodeError(
            array, "expected a numeric array of shape (samples,) or (samples, channels)."
        )
    if np.issubdtype(array.dtype, np.integer):
        scale = float(np.iinfo(array.dtype).max) + 1.0
        array = array.astype(np.float32) / scale
    channels = 1 if array.ndim == 1 else array.shape[1]
    if array.ndim == 2 and array.shape[1] > array.shape[0]:
        raise AudioDecodeError(array, "looks like (channels, samples); pass array.T, shape (samples, channels).")
    return _finish(array.astype(np.float32, copy=False), source_rate, channels, target_rate, array)


def _finish(samples: np.ndarray, rate: int, channels: int, target_rate: int, source: Any) -> DecodedAudio:
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    if samples.size == 0:
        raise EmptyAudioError(source, "decoded to zero samples (no audio in it).")
    if not np.isfinite(samples).all():
        raise AudioDecodeError(source, "contains NaN or infinite samples.")
    if rate != target_rate:
        samples = _resample(samples, rate, target_rate)
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), target_rate, rate, channels)


def _resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """High-quality resampling with soxr (scipy's polyphase filter where soxr is not installed)."""
    try:
        import soxr
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly

        divisor = gcd(rate, target_rate)
        return resample_poly(samples, target_rate // divisor, rate // divisor).astype(np.float32)
    return soxr.resample(samples, rate, target_rate, quality="HQ")


def _decode_file(file: Any, name: Any) -> tuple[np.ndarray, int, int]:
    """Return (samples as (n, channels) float32, sample rate, channels)."""
    import soundfile

    try:
        with soundfile.SoundFile(file) as sound:
            declared = sound.frames
            rate = sound.samplerate
            samples = sound.read(dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        logger.debug("soundfile could not read %s (%s); trying PyAV", name, error)
    else:
        wav_declared = _declared_wav_frames(file, samples.shape[1])
        _check_complete(name, len(samples), max(declared, wav_declared or 0), rate)
        return samples, rate, samples.shape[1]
    if hasattr(file, "seek"):
        file.seek(0)
    return _decode_with_av(file, name)


def _check_complete(name: Any, n_decoded: int, n_declared: int, rate: int) -> None:
    """Raise when the header promises clearly more audio than could be decoded (a truncated file)."""
    if n_declared > 0 and n_decoded < 0.98 * n_declared - 0.1 * rate:
        raise AudioDecodeError(
            name,
            f"the file is truncated or corrupt: its header declares {n_declared / rate:.2f} s "
            f"but only {n_decoded / rate:.2f} s could be decoded. Re-export or re-download it.",
        )


def _declared_wav_frames(file: Any, channels: int) -> int | None:
    """Frames a RIFF/WAVE header declares (libsndfile silently clips them to the file size)."""
    head: bytes
    if isinstance(file, Path):
        with open(file, "rb") as handle:
            head = handle.read(4096)
    else:
        file.seek(0)
        head = file.read(4096)
        file.seek(0)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, block_align = 12, 0
    while position + 8 <= len(head):
        chunk, size = head[position : position + 4], int.from_bytes(head[position + 4 : position + 8], "little")
        if chunk == b"fmt " and position + 24 <= len(head):
            block_align = int.from_bytes(head[position + 20 : position + 22], "little")
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF) or block_align == 0:
                return None  # streamed WAV: no length was written
            return size // block_align
        position += 8 + size + (size & 1)
    return None


def _decode_with_av(file: Any, name: Any) -> tuple[np.ndarray, int, int]:
    import av

    try:
        container = av.open(file if not isinstance(file, Path) else str(file), mode="r")
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as error:
        raise AudioDecodeError(name, f"not a readable audio or video file ({error}).") from error
    with container:
        if not container.streams.audio:
            raise NoAudioStreamError(name, "the file has no audio stream.")
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        channels = stream.codec_context.channels or 1
        # Downmix and convert to packed float at the native rate; soxr resamples afterwards.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as error:
            if not pieces:
                raise AudioDecodeError(name, f"the audio stream could not be decoded ({error}).") from error
            logger.debug("%s: decoding stopped early (%s)", name, error)
        declared_s = container.duration / 1_000_000 if container.duration else 0.0
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    _check_complete(name, len(samples), int(declared_s * rate), int(rate))
    return samples.reshape(-1, 1), int(rate), int(channels)


def is_audio_path(path: Path) -> bool:
    """True when ``path`` has a suffix ovoz treats as audio or video."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def probe_duration(source: Any) -> float | None:
    """The duration a file's header declares, in seconds, without decoding; ``None`` when unknown."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        import soundfile

        info = soundfile.info(str(source))
        if info.frames > 0:
            return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - any failure just means "unknown"; decoding reports real errors
        pass
    try:
        import av

        with av.open(str(source)) as container:
            return container.duration / 1_000_000 if container.duration else None
    except Exception:  # noqa: BLE001
        return None
