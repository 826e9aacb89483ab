"""Shared fixtures: a tiny random Gemma 4 audio model folder (real architecture), adapters, real clips."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CLIPS_DIR = Path(os.environ.get("OVOZ_SHARED_CLIPS", SHARED / "data" / "uz_clips"))


def _clips() -> list[dict]:
    manifest = CLIPS_DIR / "manifest.jsonl"
    if not manifest.exists():
        return []
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def clips() -> list[dict]:
    """The real Uzbek clips (paths made absolute). Skips when ../shared/data is absent."""
    rows = _clips()
    if not rows:
        pytest.skip(f"real clips not found at {CLIPS_DIR} (set OVOZ_SHARED_CLIPS)")
    return [{**row, "path": str(CLIPS_DIR / row["path"])} for row in rows]


@pytest.fixture(scope="session")
def clip_22k(clips) -> str:
    """A 22.05 kHz USC clip of about 4.4 s."""
    return next(c["path"] for c in clips if c["sample_rate"] == 22050 and c["duration"] < 5)


@pytest.fixture(scope="session")
def clip_16k(clips) -> str:
    """An 18 s, 16 kHz UzbekVoice clip with long silences."""
    return next(c["path"] for c in clips if c["sample_rate"] == 16000)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny random Gemma 4 model folder, read by the loader like any downloaded model."""
    from ovoz.gemma.testing import save_model_folder

    logging.getLogger("transformers").setLevel(logging.ERROR)
    return save_model_folder(tmp_path_factory.mktemp("tiny") / "model", "tiny", seed=0)


@pytest.fixture(scope="session")
def peft_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A plain-PEFT adapter (regex targets) over language tower, audio tower and embedder."""
    from ovoz.gemma.testing import save_adapter

    return save_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapters") / "peft", style="peft", seed=1)


@pytest.fixture(scope="session")
def unsloth_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """An Unsloth-style adapter: the seed's plain name list in adapter_config.json, `.linear` weight keys."""
    from ovoz.gemma.testing import save_adapter

    return save_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapters") / "unsloth", style="unsloth", seed=2)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """The tiny base model loaded once in float32 (no adapter)."""
    import ovoz

    return ovoz.load(tiny_model_dir, adapter=None, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny_processor(tiny_model_dir):
    """The tiny model's audio processor (ovoz.gemma.processor.AudioProcessor)."""
    from ovoz.gemma.processor import load_processor

    return load_processor(tiny_model_dir)
