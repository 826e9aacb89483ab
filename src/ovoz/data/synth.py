"""A synthetic Uzbek speech corpus: sentences read by espeak-ng's Uzbek voice, with light noise and reverberation.

Each sentence is cleaned (apostrophes unified, numbers written out as words, since espeak-ng reads digits badly),
assigned to a split by a hash of its text (so train, dev and test never share a sentence, in every corpus this
module writes), read by ``espeak-ng -v uz+VARIANT`` at a drawn rate and pitch, resampled to 16 kHz, then given
light reverberation and noise. Test clips are read by voice variants that train and dev never use.

Every random choice of clip ``i`` comes from ``numpy.random.default_rng([seed, i])``, so a corpus is the same byte
for byte for a seed, whatever the number of worker processes. Output folder::

    train.jsonl dev.jsonl test.jsonl    one row per clip: id, audio (relative path), text, duration, voice, ...
    audio/<split>/<id>.wav              16 kHz mono 16-bit PCM
    synth.json                          the options, the espeak-ng version and the counts
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DependencyError, ManifestError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
SPLITS = ("train", "dev", "test")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m5", "m6", "f1", "f2", "f3", "f5")
TEST_VARIANTS = ("m4", "f4")
ESPEAK_ENV = "OVOZ_ESPEAK"
"""Path of the espeak-ng program to run (default: ``espeak-ng`` on the PATH)."""


@dataclass(frozen=True)
class SynthOptions:
    """What ``synthesize`` writes. Ranges are ``(low, high)``, drawn uniformly per clip."""

    voice: str = "uz"
    train_variants: tuple[str, ...] = TRAIN_VARIANTS
    """espeak-ng voice variants (``+m1``) of the train and dev clips."""
    test_variants: tuple[str, ...] = TEST_VARIANTS
    """Variants of the test clips only (held-out voices); empty: the test split uses the train variants."""
    rate_wpm: tuple[float, float] = (140.0, 200.0)
    pitch: tuple[float, float] = (30.0, 70.0)
    snr_db: tuple[float, float] = (20.0, 40.0)
    """Signal-to-noise ratio of the added noise (white or pink, drawn per clip)."""
    reverb_probability: float = 0.3
    rt60_s: tuple[float, float] = (0.1, 0.35)
    """Decay time of the synthetic room (an exponentially decaying noise impulse response)."""
    dev_fraction: float = 0.05
    test_fraction: float = 0.05
    max_sentences: int | None = None
    """Take the first N cleaned sentences (after dropping duplicates and over-long ones)."""
    max_chars: int = 120
    copies: int = 1
    """Clips per sentence (each with its own voice, rate, pitch and noise)."""
    seed: int = 0
    workers: int | None = None
    """Processes (default: every core)."""

    def __post_init__(self) -> None:
        if not self.train_variants:
            raise ConfigError("train_variants=(): give at least one espeak-ng voice variant (e.g. m1).")
        overlap = set(self.train_variants) & set(self.test_variants)
        if overlap:
            raise ConfigError(f"test_variants: {sorted(overlap)} also in train_variants; held-out voices must "
                              "differ from the training ones.")
        for name in ("rate_wpm", "pitch", "snr_db", "rt60_s"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError(f"{name}=({low}, {high}): give low <= high.")
        if not (0 <= self.dev_fraction < 1 and 0 <= self.test_fraction < 1
                and self.dev_fraction + self.test_fraction < 1):
            raise ConfigError("dev_fraction + test_fraction: give fractions in [0, 1) that sum below 1.")
        if self.copies < 1 or self.max_chars < 1:
            raise ConfigError("copies and max_chars: give positive integers.")


@dataclass(frozen=True)
class Clip:
    """One clip to synthesize: its text and every drawn setting."""

    index: int
    id: str
    split: str
    text: str
    variant: str
    rate_wpm: int
    pitch: int
    snr_db: float
    noise: str
    rt60_s: float | None


@dataclass(frozen=True)
class SynthResult:
    output_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)


def clean_sentence(text: str) -> str:
    """The transcript of a sentence: apostrophes unified, numbers as words, whitespace collapsed."""
    from ..text import collapse_whitespace, expand_numbers, unify_apostrophes

    return collapse_whitespace(expand_numbers(unify_apostrophes(text)))


def read_sentences(paths: Iterable[str | Path]) -> list[str]:
    """Sentences from text files: ``.txt`` one per line; ``.tsv`` the ``text`` (else last) column after a header."""
    sentences: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ManifestError(f"{path}: no such text file; give .txt (one sentence a line) or .tsv files.")
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.suffix == ".tsv" and lines:
            header = lines[0].split("\t")
            column = header.index("text") if "text" in header else len(header) - 1
            lines = [row.split("\t")[column] if len(row.split("\t")) > column else "" for row in lines[1:]]
        sentences.extend(line.strip() for line in lines if line.strip())
    return sentences


def split_of(text: str, dev_fraction: float, test_fraction: float) -> str:
    """The split of a sentence, from a hash of its casefolded text: the same sentence lands in the same split."""
    key = " ".join(text.casefold().split())
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    if bucket < test_fraction:
        return "test"
    if bucket < test_fraction + dev_fraction:
        return "dev"
    return "train"


def plan(sentences: Iterable[str], options: SynthOptions) -> list[Clip]:
    """Clean, deduplicate and split the sentences and draw every clip's settings (deterministic for the seed)."""
    seen: set[str] = set()
    cleaned: list[str] = []
    for raw in sentences:
        text = clean_sentence(raw)
        key = text.casefold()
        if not text or key in seen or len(text) > options.max_chars or any(c.isdigit() for c in text):
            continue
        seen.add(key)
        cleaned.append(text)
        if options.max_sentences is not None and len(cleaned) >= options.max_sentences:
            break
    clips = []
    for number, text in enumerate(cleaned):
        split = split_of(text, options.dev_fraction, options.test_fraction)
        variants = options.test_variants if split == "test" and options.test_variants else options.train_variants
        for copy in range(options.copies):
            index = number * options.copies + copy
            rng = np.random.default_rng([options.seed, index])
            reverb = rng.random() < options.reverb_probability
            clips.append(Clip(
                index=index, id=f"{split}-{index:06d}", split=split, text=text,
                variant=str(variants[rng.integers(len(variants))]),
                rate_wpm=int(round(rng.uniform(*options.rate_wpm))), pitch=int(round(rng.uniform(*options.pitch))),
                snr_db=round(float(rng.uniform(*options.snr_db)), 2), noise=("white", "pink")[rng.integers(2)],
                rt60_s=round(float(rng.uniform(*options.rt60_s)), 3) if reverb else None,
            ))
    return clips


def espeak_program() -> str:
    program = os.environ.get(ESPEAK_ENV) or shutil.which("espeak-ng")
    if not program:
        raise DependencyError("ovoz synth needs espeak-ng: apt-get install espeak-ng (or set OVOZ_ESPEAK to its "
                              "path; ESPEAK_DATA_PATH to its data folder).")
    return program


def espeak_version() -> str:
    done = subprocess.run([espeak_program(), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def speak(text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    """espeak-ng's reading of ``text`` as float32 samples and their rate (22.05 kHz for espeak-ng)."""
    import soundfile

    from ..text import fold_apostrophes

    # espeak-ng's Uzbek rules read o' and g' with the ASCII apostrophe. The text goes through stdin, so that a
    # sentence starting with a dash is not read as an option.
    command = [espeak_program(), "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "--stdout"]
    done = subprocess.run(command, input=fold_apostrophes(text).encode("utf-8"), capture_output=True, check=False)
    if done.returncode != 0 or not done.stdout:
        raise ManifestError(f"espeak-ng -v {voice} failed on {text!r}: {done.stderr.decode(errors='replace')}")
    samples, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
    return samples, rate


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise with a 1/f power spectrum (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    scale = 1 / np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    return np.fft.irfft(spectrum * scale, n)


def room_response(rng: np.random.Generator, rt60_s: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic impulse response: a direct path, then noise decaying by 60 dB over ``rt60_s``."""
    n = int(rt60_s * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s) * 0.3
    tail[0] = 1.0
    return tail / np.sqrt(np.sum(tail**2))


def render(clip: Clip, options: SynthOptions) -> np.ndarray:
    """The clip's 16 kHz samples: espeak-ng, resampled, reverberated, noised, peak-normalised."""
    import soxr
    from scipy.signal import fftconvolve

    samples, rate = speak(clip.text, f"{options.voice}+{clip.variant}", clip.rate_wpm, clip.pitch)
    audio = soxr.resample(samples.astype(np.float64), rate, SAMPLE_RATE, quality="HQ")
    # A second generator for the signal processing, so its draws do not shift with the settings drawn in plan().
    rng = np.random.default_rng([options.seed, clip.index, 1])
    if clip.rt60_s is not None:
        audio = fftconvolve(audio, room_response(rng, clip.rt60_s))[: len(audio)]
    noise = rng.standard_normal(len(audio)) if clip.noise == "white" else pink_noise(rng, len(audio))
    power = np.mean(audio**2) or 1e-12
    noise *= np.sqrt(power / (np.mean(noise**2) * 10 ** (clip.snr_db / 10)))
    audio = audio + noise
    return (audio / max(np.max(np.abs(audio)), 1e-9) * 0.9).astype(np.float32)


def _render_batch(clips: list[Clip], options: SynthOptions, output_dir: str) -> list[dict[str, Any]]:
    import soundfile

    rows = []
    for clip in clips:
        audio = render(clip, options)
        relative = Path("audio") / clip.split / f"{clip.id}.wav"
        soundfile.write(Path(output_dir) / relative, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        rows.append({
            "id": clip.id, "audio": relative.as_posix(), "text": clip.text,
            "duration": round(len(audio) / SAMPLE_RATE, 3), "split": clip.split, "voice": clip.variant,
            "rate_wpm": clip.rate_wpm, "pitch": clip.pitch, "snr_db": clip.snr_db, "noise": clip.noise,
            "rt60_s": clip.rt60_s,
        })
    return rows


def _batches(clips: list[Clip], size: int) -> Iterator[list[Clip]]:
    for start in range(0, len(clips), size):
        yield clips[start:start + size]


def synthesize(texts: Iterable[str | Path], output_dir: str | Path, options: SynthOptions | None = None, *,
               progress: bool = True) -> SynthResult:
    """Write the corpus for the sentences in the ``texts`` files into ``output_dir`` (see the module docstring)."""
    from tqdm.auto import tqdm

    options = options or SynthOptions()
    texts = [Path(t) for t in texts]
    clips = plan(read_sentences(texts), options)
    if not clips:
        raise ManifestError(f"{', '.join(map(str, texts))}: no usable sentence (each must be at most "
                            f"{options.max_chars} characters after cleaning).")
    version = espeak_version()
    output_dir = Path(output_dir)
    for split in SPLITS:
        (output_dir / "audio" / split).mkdir(parents=True, exist_ok=True)
    workers = max(1, options.workers or os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    batch = max(1, min(64, len(clips) // (4 * workers) or 1))
    with tqdm(total=len(clips), unit="clip", desc="synthesizing", disable=not progress) as bar:
        if workers == 1:
            for part in _batches(clips, batch):
                rows.extend(_render_batch(part, options, str(output_dir)))
                bar.update(len(part))
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = [pool.submit(_render_batch, part, options, str(output_dir))
                           for part in _batches(clips, batch)]
                for future in futures:  # in order: the manifests do not depend on which worker finished first
                    done = future.result()
                    rows.extend(done)
                    bar.update(len(done))
    counts, hours = {}, {}
    for split in SPLITS:
        chosen = [row for row in rows if row["split"] == split]
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in chosen)
        (output_dir / f"{split}.jsonl").write_text(text, encoding="utf-8")
        counts[split] = len(chosen)
        hours[split] = round(sum(row["duration"] for row in chosen) / 3600, 4)
    summary = {"options": asdict(options) | {"workers": None}, "texts": [t.name for t in texts],
               "espeak_ng": version, "counts": counts, "hours": hours}
    (output_dir / "synth.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    logger.info("wrote %d clips to %s: %s", len(rows), output_dir,
                ", ".join(f"{s} {counts[s]} ({hours[s]:.2f} h)" for s in SPLITS))
    return SynthResult(output_dir, counts, hours)
