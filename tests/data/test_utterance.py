from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ovoz.data import AudioArray, ReadReport, Utterance, read_jsonl_manifest
from ovoz.errors import ConfigError


def test_audio_array_coerces_to_float32_and_compares_by_value() -> None:
    audio = AudioArray(np.arange(4, dtype=np.float64), 16000)
    assert audio.samples.dtype == np.float32
    assert audio == AudioArray(np.arange(4, dtype=np.float32), 16000)
    assert audio != AudioArray(np.arange(4, dtype=np.float32), 8000)
    assert audio.duration_s == pytest.approx(4 / 16000)
    samples, sample_rate = audio.as_tuple()
    assert sample_rate == 16000 and samples is audio.samples


@pytest.mark.parametrize(
    "samples, sample_rate",
    [(np.zeros((2, 3)), 16000), (np.zeros(3), 0), (np.zeros(3), 16000.0), (np.zeros(3), True)],
)
def test_audio_array_rejects_bad_values(samples: np.ndarray, sample_rate: object) -> None:
    with pytest.raises(ConfigError):
        AudioArray(samples, sample_rate)  # type: ignore[arg-type]


def test_utterance_validates_id_and_audio() -> None:
    assert Utterance("a", b"RIFF").audio_source == b"RIFF"
    assert Utterance("a", bytearray(b"x")).audio == b"x"
    array = AudioArray(np.zeros(3, dtype=np.float32), 16000)
    assert Utterance("a", array).audio_source == array.as_tuple()
    with pytest.raises(ConfigError):
        Utterance("", "x.wav")
    with pytest.raises(ConfigError):
        Utterance(7, "x.wav")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Utterance("a", 3.0)  # type: ignore[arg-type]


def test_unknown_on_error_policy_is_rejected_at_call(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="on_error"):
        read_jsonl_manifest(manifest, on_error="ignore")


def test_report_starts_empty() -> None:
    report = ReadReport()
    assert (report.n_rows, report.n_yielded, report.n_skipped) == (0, 0, 0)


def test_import_is_light() -> None:
    code = "import sys, ovoz.data; print(sorted(m for m in ('numpy', 'pyarrow', 'datasets') if m in sys.modules))"
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
