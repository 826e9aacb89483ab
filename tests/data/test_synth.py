"""ovoz synth: espeak-ng corpus; deterministic for a seed, splits never share a sentence, held-out test voices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ovoz.data.synth import SynthOptions, clean_sentence, plan, split_of, synthesize
from ovoz.errors import ConfigError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SENTENCES = [
    "Bugun havo juda yaxshi.", "Men 25 ta kitob o‘qidim.", "Toshkent katta shahar.", "Salom, do'stim!",
    "Bolalar maktabga ketishdi.", "U 1991-yilda tug‘ilgan.", "Kecha yomg‘ir yog‘di.", "Non issiq edi.",
    "Biz bog‘da o'ynadik.", "Qishda qor ko'p yog'adi.", "Olma shirin.", "Daryo tez oqadi.",
]


@pytest.fixture()
def texts(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES + SENTENCES[:3]) + "\n", encoding="utf-8")  # duplicates are dropped
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(texts, tmp_path):
    options = SynthOptions(dev_fraction=0.2, test_fraction=0.2, copies=2, seed=7, reverb_probability=0.5)
    synthesize([texts], tmp_path / "a", options, progress=False)
    synthesize([texts], tmp_path / "b", SynthOptions(**{**options.__dict__, "workers": 2}), progress=False)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a == b
    synthesize([texts], tmp_path / "c", SynthOptions(**{**options.__dict__, "seed": 8}), progress=False)
    c = _tree(tmp_path / "c")
    assert set(c) == set(a) and any(c[name] != a[name] for name in a if name.endswith(".wav"))


def test_manifests_splits_and_voices(texts, tmp_path):
    import soundfile

    options = SynthOptions(dev_fraction=0.25, test_fraction=0.25, workers=1)
    result = synthesize([texts], tmp_path / "corpus", options, progress=False)
    rows = {split: [json.loads(line) for line in (tmp_path / "corpus" / f"{split}.jsonl").read_text().splitlines()]
            for split in ("train", "dev", "test")}
    assert sum(result.counts.values()) == len(set(SENTENCES)) == sum(len(r) for r in rows.values())
    texts_of = {split: {row["text"] for row in r} for split, r in rows.items()}
    assert not (texts_of["train"] & texts_of["dev"]) and not (texts_of["train"] & texts_of["test"])
    assert not (texts_of["dev"] & texts_of["test"])
    assert all(row["voice"] in options.test_variants for row in rows["test"])
    assert all(row["voice"] in options.train_variants for row in rows["train"] + rows["dev"])
    every = [row for r in rows.values() for row in r]
    assert not any(ch.isdigit() for row in every for ch in row["text"])  # numbers written out
    assert "yigirma besh" in " ".join(row["text"] for row in every)
    for row in every[:3]:
        samples, rate = soundfile.read(tmp_path / "corpus" / row["audio"])
        assert rate == 16000 and samples.ndim == 1
        assert abs(len(samples) / rate - row["duration"]) < 1e-3 and 0.5 < row["duration"] < 10


def test_split_depends_on_the_sentence_only():
    assert split_of("Olma shirin.", 0.3, 0.3) == split_of("olma   SHIRIN.", 0.3, 0.3)
    a = plan(SENTENCES, SynthOptions(seed=1, dev_fraction=0.3, test_fraction=0.3))
    b = plan(SENTENCES[::-1], SynthOptions(seed=2, dev_fraction=0.3, test_fraction=0.3))
    assert {c.text: c.split for c in a} == {c.text: c.split for c in b}


def test_clean_sentence_writes_numbers_as_words():
    from ovoz.text import expand_numbers, unify_apostrophes

    cleaned = clean_sentence("Men  25 ta kitob o‘qidim.")
    assert cleaned == expand_numbers(unify_apostrophes("Men 25 ta kitob o‘qidim."))
    assert "yigirma besh" in cleaned and not any(ch.isdigit() for ch in cleaned)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="test_variants"):
        SynthOptions(train_variants=("m1", "f4"), test_variants=("f4",))
    with pytest.raises(ConfigError, match="rate_wpm"):
        SynthOptions(rate_wpm=(200, 100))
