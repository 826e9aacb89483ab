"""Decode any audio input to 16 kHz mono float32.

Files and bytes are decoded with soundfile (libsndfile: wav, flac, ogg/vorbis/opus, mp3) and, for
everything else (m4a/aac, the audio track of mp4/mkv/webm, ...), with PyAV (FFmpeg). Resampling is
done once, with soxr, whatever the decoder. Files are decoded, downmixed and resampled block by block, so
decoding an hour of 48 kHz stereo needs about the memory of its 16 kHz mono result.

Only regular files are opened: a FIFO, socket or device is refused by its type, without reading it (reading
a FIFO blocks until some writer appears). Audio shorter than :data:`MIN_SAMPLES` (40 ms, one audio token of
Gemma 4's encoder, which cannot take less) is padded with trailing silence to that length, with a warning, as
Whisper-style front ends pad short audio; the transcript's duration is then the padded one.
"""

from __future__ import annotations

import io
import logging
import os
import stat
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

MIN_SAMPLES = SAMPLE_RATE * 40 // 1000
"""Shortest audio sent on, at 16 kHz (40 ms: one audio token); shorter audio is padded with silence."""
MIN_SOURCE_RATE, MAX_SOURCE_RATE = 1_000, 768_000
"""Sample rates accepted for input audio, in Hz (telephone speech is 8 kHz; studio files reach 384 kHz)."""
BLOCK_FRAMES = 1 << 18
"""Frames decoded, downmixed and resampled at a time (about 5 s at 48 kHz)."""


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
        return _from_array(np.asarray(array), _check_rate("<array>", source_rate), sample_rate, "<array>")
    if isinstance(source, np.ndarray):
        return _from_array(source, SAMPLE_RATE, sample_rate, "<array>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyAudioError(source, "no bytes were given; pass the bytes of an audio file.")
        samples, rate, channels = _decode_file(io.BytesIO(data), source, sample_rate)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        check_audio_file(path)
        samples, rate, channels = _decode_file(path, path, sample_rate)
    else:
        raise AudioDecodeError(
            repr(type(source).__name__),
            "unsupported audio input type; give a path, bytes, a float array, or (array, sample_rate).",
        )
    return _finish(samples, rate, channels, sample_rate, source, converted=True)


def check_audio_file(path: Path) -> None:
    """Raise the typed error a decode of ``path`` would end in, from its metadata alone (nothing is opened):
    missing, a folder, not a regular file (FIFO, socket, device), unreadable or empty."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AudioFileNotFoundError(path, "no such file. Check the path.") from None
    except OSError as error:
        raise AudioDecodeError(path, f"cannot be examined ({error.strerror}). Check the path.") from error
    if stat.S_ISDIR(info.st_mode):
        raise AudioFileNotFoundError(path, "is a directory; give an audio file (the CLI accepts folders).")
    if not stat.S_ISREG(info.st_mode):
        raise AudioDecodeError(
            path, f"is a {_file_kind(info.st_mode)}, not a regular file; ovoz reads audio from files only "
            "(save the stream to a file first)."
        )
    if info.st_size == 0:
        raise EmptyAudioError(path, "the file is empty (0 bytes); re-export or re-download it.")
    if not os.access(path, os.R_OK):
        raise AudioDecodeError(path, "the file is not readable (permission denied). Check its permissions.")


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return "special file"


def _check_rate(name: Any, rate: Any) -> int:
    try:
        value = int(rate)
    except (TypeError, ValueError, OverflowError):
        value = 0
    if value != rate or not MIN_SOURCE_RATE <= value <= MAX_SOURCE_RATE:
        raise AudioDecodeError(
            name, f"sample_rate={rate!r} is not a usable audio sample rate; give the rate the audio was "
            f"recorded at, in Hz, between {MIN_SOURCE_RATE} and {MAX_SOURCE_RATE} (e.g. 16000)."
        )
    return value


def _from_array(array: np.ndarray, source_rate: int, target_rate: int, name: str) -> DecodedAudio:
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


def _finish(samples: np.ndarray, rate: int, channels: int, target_rate: int, source: Any, *,
            converted: bool = False) -> DecodedAudio:
    """Arrays are downmixed and resampled here; decoded files come ``converted`` (mono at ``target_rate``)."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if samples.size == 0 and not converted:  # a decoder checks its own input (one sample may resample to none)
        raise EmptyAudioError(source, "decoded to zero samples (no audio in it); give a file with sound in it.")
    if not _all_finite(samples):
        raise AudioDecodeError(source, "contains NaN or infinite samples; re-export it (or clean the array).")
    if rate != target_rate and not converted:
        samples = _resample(samples, rate, target_rate)
    minimum = -(-MIN_SAMPLES * target_rate // SAMPLE_RATE)
    if len(samples) < minimum:
        logger.warning("%s: %.4f s of audio is shorter than %d ms; padded with silence to %d ms",
                       _name(source), len(samples) / target_rate, 1000 * minimum // target_rate,
                       1000 * minimum // target_rate)
        samples = np.concatenate([samples.astype(np.float32, copy=False), np.zeros(minimum - len(samples), np.float32)])
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), target_rate, rate, channels)


def _name(source: Any) -> str:
    from .errors import _describe

    return _describe(source)


def _all_finite(samples: np.ndarray) -> bool:
    """``np.isfinite(samples).all()`` without a boolean copy of an hour of audio."""
    return all(np.isfinite(samples[i : i + BLOCK_FRAMES]).all() for i in range(0, len(samples), BLOCK_FRAMES))


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


class _MonoCollector:
    """Mono float32 blocks at a source rate -> one array at the target rate, resampled as they come (soxr's
    stream gives the same samples as one call) into a buffer sized from the declared length."""

    def __init__(self, rate: int, target_rate: int, expected_frames: int = 0) -> None:
        self.rate, self.target_rate = rate, target_rate
        self.stream = None
        self.pending: list[np.ndarray] = []  # scipy fallback: resampled once at the end
        if rate != target_rate:
            try:
                import soxr

                self.stream = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
            except ImportError:
                pass
        capacity = -(-max(expected_frames, 0) * target_rate // rate) + 64
        self.buffer = np.empty(capacity if self.stream is not None or rate == target_rate else 0, np.float32)
        self.size = 0

    def add(self, block: np.ndarray, last: bool = False) -> None:
        if self.rate == self.target_rate:
            self._append(block)
        elif self.stream is not None:
            self._append(self.stream.resample_chunk(np.ascontiguousarray(block, np.float32), last=last))
        else:
            self.pending.append(np.array(block, np.float32))

    def _append(self, block: np.ndarray) -> None:
        end = self.size + len(block)
        if end > len(self.buffer):
            grown = np.empty(max(end, 2 * len(self.buffer)), np.float32)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = grown
        self.buffer[self.size : end] = block
        self.size = end

    def result(self) -> np.ndarray:
        if self.stream is not None:
            self.add(np.zeros(0, np.float32), last=True)
        elif self.pending:
            return _resample(np.concatenate(self.pending), self.rate, self.target_rate)
        if self.size < len(self.buffer) // 2:
            return self.buffer[: self.size].copy()
        return self.buffer[: self.size]


def _decode_file(file: Any, name: Any, target_rate: int) -> tuple[np.ndarray, int, int]:
    """Return (mono float32 samples at ``target_rate``, source sample rate, source channels)."""
    import soundfile

    try:
        with soundfile.SoundFile(file) as sound:
            declared, rate, channels = sound.frames, sound.samplerate, sound.channels
            _check_rate(name, rate)
            collector = _MonoCollector(rate, target_rate, declared)
            n_decoded = 0
            while True:
                block = sound.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    break
                n_decoded += len(block)
                collector.add(block[:, 0] if channels == 1 else block.mean(axis=1, dtype=np.float32))
            samples = collector.result()
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        logger.debug("soundfile could not read %s (%s); trying PyAV", name, error)
    else:
        if not n_decoded:
            raise EmptyAudioError(name, "decoded to zero samples (no audio in it); give a file with sound in it.")
        wav_declared = _declared_wav_frames(file, channels)
        _check_complete(name, n_decoded, max(declared, wav_declared or 0), rate)
        return samples, rate, channels
    if hasattr(file, "seek"):
        file.seek(0)
    return _decode_with_av(file, name, target_rate)


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


def _decode_with_av(file: Any, name: Any, target_rate: int) -> tuple[np.ndarray, int, int]:
    import av

    try:
        container = av.open(file if not isinstance(file, Path) else str(file), mode="r")
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as error:
        raise AudioDecodeError(name, f"not a readable audio or video file ({error}); give wav, flac, ogg, mp3, m4a or a video "
                               "with sound, or re-export it.") from error
    with container:
        streams = container.streams.audio
        if not streams:
            raise NoAudioStreamError(name, "the file has no audio stream (a video without sound?); give a file with an "
                                           "audio track.")
        stream = streams[0]
        if len(streams) > 1:
            others = ", ".join(_describe_stream(s) for s in streams[1:])
            logger.warning("%s: holds %d audio streams; transcribing the first (%s) and not %s. To transcribe "
                           "another, extract it first: ffmpeg -i INPUT -map 0:a:N -vn out.wav",
                           name, len(streams), _describe_stream(stream), others)
        rate = _check_rate(name, stream.rate or stream.codec_context.sample_rate)
        channels = stream.codec_context.channels or 1
        declared_s = container.duration / 1_000_000 if container.duration else 0.0
        # Downmix and convert to packed float at the native rate; soxr resamples as frames come.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        collector = _MonoCollector(rate, target_rate, int(declared_s * rate))
        n_decoded = 0

        def add(frames: list) -> None:
            nonlocal n_decoded
            for out in frames:
                block = out.to_ndarray().reshape(-1)
                n_decoded += len(block)
                collector.add(block)

        try:
            for frame in container.decode(stream):
                add(resampler.resample(frame))
            add(resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as error:
            if not n_decoded:
                raise AudioDecodeError(name, f"the audio stream could not be decoded ({error}); re-export or re-download it.") from error
            logger.debug("%s: decoding stopped early (%s)", name, error)
    if not n_decoded:
        raise EmptyAudioError(name, "decoded to zero samples (no audio in it); give a file with sound in it.")
    _check_complete(name, n_decoded, int(declared_s * rate), int(rate))
    return collector.result(), int(rate), int(channels)


def _describe_stream(stream: Any) -> str:
    language = (getattr(stream, "metadata", None) or {}).get("language")
    codec = getattr(stream.codec_context, "name", "?")
    return f"stream {stream.index}: {codec}" + (f", language {language}" if language else "")


def is_audio_path(path: Path) -> bool:
    """True when ``path`` has a suffix ovoz treats as audio or video."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def probe_duration(source: Any) -> float | None:
    """The duration a file's header declares, in seconds, without decoding; ``None`` when unknown."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        if not stat.S_ISREG(os.stat(source).st_mode):
            return None  # never open a FIFO or device: reading it may block forever
    except OSError:
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
