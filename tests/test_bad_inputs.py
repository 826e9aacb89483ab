"""One table of hostile inputs, run through every front end: the Python API, ``ovoz transcribe``, evaluation and
training's example builder.

Every case ends, within its test's time bound (pytest-timeout, so a hang fails instead of blocking the suite),
in a typed :class:`ovoz.OvozError` whose message names the input and says how to fix it, or in a documented
success; and the good inputs around it keep their results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import ovoz
from ovoz.errors import AudioDecodeError, AudioFileNotFoundError, EmptyAudioError, NoAudioStreamError, OvozError
from ovoz.types import SAMPLE_RATE, TranscribeOptions

FFMPEG = shutil.which("ffmpeg")
FAST = TranscribeOptions(max_new_tokens=4, batch_size=4)
TIME_BOUND_S = 120
"""Each test's limit: generous for two shared CPU cores; a hang (a FIFO read, say) would never end."""


def _tone(seconds: float, rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32) / 2
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name
    return make


def _wav(name: str, samples: np.ndarray, rate: int = SAMPLE_RATE, subtype: str | None = None):
    def make(folder: Path) -> Path:
        sf.write(folder / name, samples, rate, subtype=subtype)
        return folder / name
    return make


def _truncated(folder: Path) -> Path:
    sf.write(folder / "whole.wav", _tone(2.0), SAMPLE_RATE)
    data = (folder / "whole.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 3])
    return folder / "truncated.wav"


def _header_only(folder: Path) -> Path:
    sf.write(folder / "tmp.wav", _tone(0.5), SAMPLE_RATE)
    (folder / "header-only.wav").write_bytes((folder / "tmp.wav").read_bytes()[:44])
    return folder / "header-only.wav"


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.wav")  # nothing ever writes to it: opening it for reading would block forever
    return folder / "pipe.wav"


def _ffmpeg(name: str, *args: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        if FFMPEG is None:
            pytest.skip("ffmpeg is not installed")
        subprocess.run([FFMPEG, "-loglevel", "error", "-y", *args, str(folder / name)], check=True)
        return folder / name
    return make


def _corrupt_m4a(folder: Path) -> Path:
    whole = _ffmpeg("whole.m4a", "-f", "lavfi", "-i", "sine=f=300:r=16000:d=2", "-c:a", "aac")(folder)
    data = whole.read_bytes()
    (folder / "corrupt.m4a").write_bytes(data[: len(data) // 2])  # the moov atom is at the end: unreadable
    return folder / "corrupt.m4a"


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]
    """Builds the input in a folder and returns its path."""
    error: type[OvozError] | None
    """The typed error every front end must end in for this input; None: it must succeed (documented)."""
    fix: str = ""
    """A regular expression the message must match besides the input's path: the fix it suggests."""


CASES = [
    Case("missing", lambda folder: folder / "no-such-file.wav", AudioFileNotFoundError, r"[Cc]heck the path"),
    Case("empty", _write("empty.wav", b""), EmptyAudioError, r"re-export|give a file with"),
    Case("text-file", _write("notes.wav", b"bu audio emas\n"), AudioDecodeError, r"give wav|re-export"),
    Case("random-bytes", _write("noise.mp3", np.random.default_rng(0).bytes(5000)), AudioDecodeError,
         r"give wav|re-export"),
    Case("truncated", _truncated, AudioDecodeError, r"Re-export or re-download"),
    Case("header-only", _header_only, EmptyAudioError, r"give a file with sound"),
    Case("nan-samples", _wav("nan.wav", np.array([0.1, np.nan] * 800, np.float32), subtype="FLOAT"),
         AudioDecodeError, r"re-export"),
    Case("absurd-rate", _wav("rate500.wav", _tone(1.0, 500), 500), AudioDecodeError, r"between 1000 and 768000"),
    Case("fifo", _fifo, AudioDecodeError, r"FIFO|regular file"),
    Case("device", lambda folder: Path("/dev/zero"), AudioDecodeError, r"device|regular file"),
    Case("video-without-audio", _ffmpeg("silent.mp4", "-f", "lavfi", "-i", "color=c=black:s=32x32:d=1",
                                        "-c:v", "libx264"), NoAudioStreamError, r"audio track"),
    Case("corrupt-m4a", _corrupt_m4a, AudioDecodeError, r"give wav|re-export"),
    # Documented successes:
    Case("one-sample", _wav("one-sample.wav", np.array([0.5], np.float32), 44100), None),  # padded to 40 ms
    Case("10-ms", _wav("ten-ms.wav", _tone(0.01)), None),
    Case("stereo-48k", _wav("stereo48k.flac", _tone(1.0, 48000, 2), 48000), None),
    Case("digital-silence", _wav("silence.wav", np.zeros(SAMPLE_RATE, np.float32)), None),  # empty transcript
    Case("two-audio-streams", _ffmpeg("two.mkv", "-f", "lavfi", "-i", "sine=f=300:r=16000:d=1", "-f", "lavfi",
                                      "-i", "sine=f=500:r=16000:d=1", "-map", "0", "-map", "1", "-c:a", "flac"), None),
    Case("long-cyrillic-name", _wav("ў" * 120 + ".wav", _tone(1.0)), None),  # 244 bytes: outputs are cut to fit
]
IDS = [case.id for case in CASES]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("good")
    paths = [folder / "good1.wav", folder / "good2.wav"]
    sf.write(paths[0], _tone(1.5), SAMPLE_RATE)
    sf.write(paths[1], _tone(1.0, 22050), 22050)
    return paths


@pytest.fixture(scope="module")
def good_texts(tiny_model, good) -> list[str]:
    return [tiny_model.transcribe(path, options=FAST).text for path in good]


def make_input(case: Case, tmp_path: Path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    return case.make(folder)


def assert_names_input_and_fix(case: Case, path: Path, message: str) -> None:
    assert str(path) in message, message
    assert re.search(case.fix, message), f"{case.id}: no fix ({case.fix!r}) in: {message}"
    assert "Traceback" not in message


@pytest.mark.timeout(TIME_BOUND_S)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_api(case, tiny_model, good, good_texts, tmp_path):
    path = make_input(case, tmp_path)
    if case.error is None:
        result = tiny_model.transcribe(path, options=FAST)
        assert isinstance(result, ovoz.Transcript) and result.duration_s >= 0.04
    else:
        with pytest.raises(case.error) as caught:
            tiny_model.transcribe(path, options=FAST)
        assert_names_input_and_fix(case, path, str(caught.value))
    batch = tiny_model.transcribe_batch([good[0], path, good[1]], options=FAST)
    assert [r.text for r in (batch[0], batch[2])] == good_texts  # the others' results are intact
    if case.error is None:
        assert isinstance(batch[1], ovoz.Transcript)
    else:
        assert isinstance(batch[1], case.error)


@pytest.mark.timeout(TIME_BOUND_S)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_transcribe_command(case, tiny_model_dir, good, good_texts, tmp_path, capsys):
    from ovoz.cli import EXIT_FAILED_INPUTS, EXIT_OK, main

    path = make_input(case, tmp_path)
    out = tmp_path / "out"
    code = main(["transcribe", str(good[0]), str(path), str(good[1]), "-o", str(out), "-f", "txt,json",
                 "--base", str(tiny_model_dir), "--no-adapter", "--device", "cpu", "--dtype", "float32",
                 "--max-new-tokens", "4", "--batch-size", "4"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for source, text in zip(good, good_texts):
        assert json.loads((out / f"{source.stem}.json").read_text(encoding="utf-8"))["text"] == text
    if case.error is None:
        assert code == EXIT_OK, err
        written = [p for p in out.glob("*.json") if p.stem not in ("good1", "good2")]
        assert len(written) == 1 and len(written[0].name.encode()) <= 255
    else:
        assert code == EXIT_FAILED_INPUTS, err
        assert "2 transcribed, 0 skipped (outputs exist), 1 failed" in err
        [line] = [line for line in err.splitlines() if line.startswith("  failed: ")]
        assert_names_input_and_fix(case, path, line)
        assert sorted(p.name for p in out.iterdir()) == ["good1.json", "good1.txt", "good2.json", "good2.txt"]


def _manifest(tmp_path: Path, sources: list[Path]) -> Path:
    manifest = tmp_path / "set.jsonl"
    rows = [{"id": f"u{i}", "audio": str(source), "text": "salom dunyo"} for i, source in enumerate(sources)]
    manifest.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return manifest


@pytest.mark.timeout(TIME_BOUND_S)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_evaluation(case, tiny_model, good, good_texts, tmp_path):
    """A manifest row with the bad input: skipped by the reader with its reason, or a hypothesis carrying the
    typed error; the good rows are scored as usual."""
    from ovoz.eval import read_corpus, transcribe_utterances

    path = make_input(case, tmp_path)
    utterances, info = read_corpus(_manifest(tmp_path, [good[0], path, good[1]]))
    hypotheses = transcribe_utterances(tiny_model, utterances, FAST, progress=False)
    assert [hypotheses["u0"].text, hypotheses["u2"].text] == good_texts
    assert hypotheses["u0"].error is None and hypotheses["u2"].error is None
    if case.error is None:
        assert hypotheses["u1"].error is None
    elif "u1" in hypotheses:
        assert_names_input_and_fix(case, path, hypotheses["u1"].error)
    else:  # known bad before decoding (missing, FIFO, device): the reader lists the row
        [row] = info["skipped_rows"]
        assert row["id"] == "u1"
        assert_names_input_and_fix(case, path, row["reason"])


@pytest.mark.timeout(TIME_BOUND_S)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_training_examples(case, tiny_model, tiny_model_dir, good, tmp_path):
    """Training's reader and example builder (what ``ovoz train`` streams through TRL): the bad row is dropped
    with its reason, the good rows become examples."""
    from ovoz.data import ReadReport, open_dataset
    from ovoz.train import resolve_config
    from ovoz.train.data import DataStats, ExampleBuilder

    path = make_input(case, tmp_path)
    manifest = _manifest(tmp_path, [good[0], path, good[1]])
    config = resolve_config(None, {"base": str(tiny_model_dir), "data": str(manifest), "output_dir": str(tmp_path)})
    builder = ExampleBuilder(config, tiny_model.processor, DataStats())
    report = ReadReport()
    examples = {}
    for utterance in open_dataset(manifest, on_error="skip", report=report):
        examples[utterance.id] = builder(utterance.id, utterance.audio_source, utterance.text)
    assert len(examples["u0"]) == 1 and len(examples["u2"]) == 1
    np.testing.assert_allclose(examples["u0"][0]["audio"], ovoz.load_audio(good[0]))
    if case.error is None:
        assert len(examples["u1"]) == 1 and builder.stats.rejects == []
    elif "u1" in examples:
        assert examples["u1"] == []
        [reject] = builder.stats.rejects
        assert reject["id"] == "u1"
        assert_names_input_and_fix(case, path, reject["reason"])
    else:
        [row] = report.skipped
        assert row.id == "u1"
        assert_names_input_and_fix(case, path, row.reason)
