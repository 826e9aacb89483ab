"""Fixture corpora built in the real on-disk layouts from the shared Uzbek clips."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED_CLIPS = Path("/work/shared/data/uz_clips")
FFMPEG = shutil.which("ffmpeg") or ("/usr/bin/ffmpeg" if Path("/usr/bin/ffmpeg").exists() else None)
CV_HEADER = (
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
)


@dataclass(frozen=True)
class Clip:
    path: Path
    text: str
    duration_s: float


@pytest.fixture(scope="session")
def clips() -> list[Clip]:
    """The first three real clips of the shared manifest (short USC recordings, 22.05 kHz wav)."""
    manifest = SHARED_CLIPS / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip(f"shared clips not found at {SHARED_CLIPS}")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Clip(SHARED_CLIPS / r["path"], r["text"], r["duration"]) for r in rows[:3]]


@pytest.fixture(scope="session")
def cv_root(tmp_path_factory: pytest.TempPathFactory, clips: list[Clip]) -> Path:
    """A Common Voice release: <root>/uz/test.tsv (real header) + <root>/uz/clips/*.mp3 made with ffmpeg."""
    if FFMPEG is None:
        pytest.skip("ffmpeg not installed: the Common Voice fixture needs it to make mp3 clips")
    root = tmp_path_factory.mktemp("cv-corpus-17.0") / "cv-corpus-17.0-2024-03-15"
    lang = root / "uz"
    (lang / "clips").mkdir(parents=True)
    rows = ["\t".join(CV_HEADER)]
    for n, clip in enumerate(clips):
        name = f"common_voice_uz_{4000 + n}.mp3"
        subprocess.run(
            [FFMPEG, "-nostdin", "-loglevel", "error", "-y", "-i", str(clip.path), "-t", "1", "-ar", "16000",
             "-ac", "1", str(lang / "clips" / name)],
            check=True,
        )
        # The second sentence carries a double quote: CV TSVs are unquoted, the reader must keep it verbatim.
        sentence = clip.text if n != 1 else f'"{clip.text}" dedi'
        rows.append("\t".join([f"c{n}" * 8, name, f"s{n}", sentence, "", str(2 + n), "0", "twenties",
                               "male_masculine", "", "", "uz", ""]))
    (lang / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def fleurs_root(tmp_path_factory: pytest.TempPathFactory, clips: list[Clip]) -> Path:
    """google/fleurs layout: <root>/uz_uz/test.tsv (no header) + <root>/uz_uz/audio/test/<file_name>."""
    root = tmp_path_factory.mktemp("fleurs")
    audio = root / "uz_uz" / "audio" / "test"
    audio.mkdir(parents=True)
    lines = []
    for n, clip in enumerate(clips):
        name = f"{1000 + n}77.wav"
        shutil.copyfile(clip.path, audio / name)
        sentence_id = 1751 if n < 2 else 1752  # FLEURS ids are sentence ids, read by several speakers
        raw = clip.text.capitalize() + "."
        lines.append("\t".join([str(sentence_id), name, raw, clip.text, "", str(int(clip.duration_s * 16000)),
                                "FEMALE" if n else "MALE"]))
    (root / "uz_uz" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
