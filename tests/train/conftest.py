"""Synthetic Uzbek speech (espeak-ng -v uz) and helpers for the training tests."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest
from train_helpers import write_manifest

SENTENCES = (
    "Salom dunyo",
    "Bugun havo juda yaxshi",
    "Men maktabga boraman",
    "Toshkent katta shahar",
    "Kitob o'qish foydali",
    "Ertaga yomg'ir yog'adi",
)


@pytest.fixture(scope="session")
def uz_speech(tmp_path_factory) -> dict:
    """Six short Uzbek sentences spoken by espeak-ng (22.05 kHz wav), with train/dev JSONL manifests."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("uz_speech")
    rows = []
    for index, text in enumerate(SENTENCES):
        wav = folder / f"clip{index}.wav"
        subprocess.run([espeak, "-v", "uz", "-w", str(wav), text], check=True, capture_output=True)
        rows.append({"id": f"clip{index}", "audio": wav.name, "text": text})
    return {
        "folder": folder,
        "rows": rows,
        "train": write_manifest(folder / "train.jsonl", rows[:4]),
        "dev": write_manifest(folder / "dev.jsonl", rows[4:]),
        "all": write_manifest(folder / "all.jsonl", rows),
    }


@pytest.fixture(autouse=True)
def _quiet_transformers():
    for name in ("transformers", "datasets", "peft", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    yield
