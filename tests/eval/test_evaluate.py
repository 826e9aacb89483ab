"""ovoz.eval and ``ovoz eval``: decoding with a cache that resumes, scoring, adapters on one base, the report."""

from __future__ import annotations

import csv
import json
import math
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from ovoz.data import AudioArray, Utterance
from ovoz.decoding import Decoded
from ovoz.errors import AudioTooLongError, ConfigError
from ovoz.eval import (
    CACHE_FILE,
    HypothesisCache,
    ModelSpec,
    evaluate,
    options_key,
    read_corpus,
    score_hypotheses,
    transcribe_utterances,
    unique_names,
)
from ovoz.eval.report import headline_table
from ovoz.gemma.loading import ModelInfo
from ovoz.transcriber import Transcriber
from ovoz.types import SAMPLE_RATE, Segment, TranscribeOptions, Transcript, TranscriptionInfo

# (id, seconds, reference, what the fake model "hears")
ROWS = [
    ("a", 1.0, "salom dunyo", "salom dunyo"),
    ("b", 3.0, "Oʻzbekiston poytaxti Toshkent.", "o'zbekiston poytaxti toshkent"),
    ("c", 6.0, "bugun havo juda yaxshi", "bugun havo juda yomon"),
    ("d", 12.0, "5 ta kitob oldim", "beshta kitob oldim"),
    ("e", 25.0, "men maktabga boraman", "men maktabga boraman"),
]


class FakeTranscriber:
    """Stands in for a loaded model: the hypothesis of a clip is looked up by its length in samples."""

    def __init__(self, texts: dict[int, str], adapter: str | None = None) -> None:
        self.texts = texts
        self.info = ModelInfo(base="fake-base", adapter=adapter, device="cpu", dtype="float32", quantization=None)
        self.n_clips = 0
        self.batches: list[int] = []
        self.long_calls = 0

    def generate_clips(self, clips, options, *, max_new_tokens=None, **_):
        assert len(clips) <= options.batch_size
        assert all(len(c) <= 30 * SAMPLE_RATE for c in clips)
        self.n_clips += len(clips)
        self.batches.append(len(clips))
        return [Decoded(self.texts[len(c)], (1, 2, 3), -0.25, True) for c in clips]

    # ovoz's own batching and option handling, around the fake decoding above.
    _options = Transcriber._options
    _decode = Transcriber._decode
    transcribe_batch = Transcriber.transcribe_batch
    _transcript = Transcriber._transcript
    resolve_options = Transcriber.resolve_options

    def transcribe(self, audio, *, options=None, **_):
        self.long_calls += 1
        if len(audio) > 60 * SAMPLE_RATE:
            raise AudioTooLongError("<array>", "too long for this fake")
        duration_s = len(audio) / SAMPLE_RATE
        text = "uzun nutq matni"
        return Transcript(text, (Segment(0, 0.0, duration_s, text, -0.5, 4),), TranscriptionInfo(duration_s))


def _utterances(rows=ROWS) -> tuple[list[Utterance], dict[int, str]]:
    utterances, texts = [], {}
    for index, (utt_id, seconds, reference, heard) in enumerate(rows):
        n_samples = int(seconds * SAMPLE_RATE) + index  # distinct lengths identify the clip
        # Faint constant sound, not digital silence (which ovoz never sends to the model).
        utterances.append(Utterance(utt_id, AudioArray(np.full(n_samples, 0.01, np.float32), SAMPLE_RATE), reference))
        texts[n_samples] = heard
    return utterances, texts


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.parametrize(
    "text, name, adapter",
    [
        ("base", "base", None),
        ("./adapters/my_lora/", "my_lora", "./adapters/my_lora/"),
        ("zehnmindai/gemma_4_uzbek_stt_lora", "gemma_4_uzbek_stt_lora", "zehnmindai/gemma_4_uzbek_stt_lora"),
        ("v2=./out/checkpoint-100", "v2", "./out/checkpoint-100"),
        ("alone=base", "alone", None),
        ("/data/run=3/adapter", "adapter", "/data/run=3/adapter"),
    ],
)
def test_model_spec_parse(text, name, adapter):
    assert ModelSpec.parse(text) == ModelSpec(name, adapter)


def test_unique_names_suffixes_repeats():
    names = [s.name for s in unique_names([ModelSpec("a", "x/a"), ModelSpec("a", "y/a"), ModelSpec("b")])]
    assert names == ["a", "a-2", "b"]


def test_cache_resumes_after_interruption(tmp_path):
    utterances, texts = _utterances()
    options = TranscribeOptions(batch_size=2, max_new_tokens=32)
    model = FakeTranscriber(texts)
    first = evaluate(model, [ModelSpec("base")], utterances, tmp_path, options=options, progress=False)
    assert model.n_clips == 5 and max(model.batches) == 2

    # Interrupt: keep the first two records and a half-written third line.
    cache = tmp_path / CACHE_FILE
    lines = cache.read_text(encoding="utf-8").splitlines()
    cache.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25], encoding="utf-8")
    again = FakeTranscriber(texts)
    second = evaluate(again, [ModelSpec("base")], utterances, tmp_path, options=options, progress=False)
    assert again.n_clips == 3
    assert [h.text for h in second.models[0].hypotheses] == [h.text for h in first.models[0].hypotheses]
    assert second.models[0].scores["normalized"].report.corpus == first.models[0].scores["normalized"].report.corpus

    # Everything cached now: a third run decodes nothing; a new batch size does not invalidate the cache.
    third = FakeTranscriber(texts)
    evaluate(third, [ModelSpec("base")], utterances, tmp_path, options=options.replace(batch_size=4), progress=False)
    assert third.n_clips == 0


def test_cache_is_keyed_by_decoding_options_and_model(tmp_path):
    utterances, texts = _utterances()
    cache = HypothesisCache(tmp_path / CACHE_FILE)
    options = TranscribeOptions(max_new_tokens=32)
    transcribe_utterances(FakeTranscriber(texts), utterances, options, cache=cache, progress=False)
    other_options = FakeTranscriber(texts)
    transcribe_utterances(other_options, utterances, options.replace(max_new_tokens=16), cache=cache, progress=False)
    other_model = FakeTranscriber(texts, adapter="some/adapter")
    transcribe_utterances(other_model, utterances, options, cache=cache, progress=False)
    assert other_options.n_clips == 5 and other_model.n_clips == 5
    assert options_key(options) == options_key(options.replace(batch_size=1))
    assert options_key(options) != options_key(options.replace(repetition_guard=False))
    assert len(HypothesisCache(cache.path).get("nonexistent", options_key(options))) == 0


def test_long_and_failing_utterances(tmp_path):
    rows = ROWS[:2] + [("long", 45.0, "uzun nutq matni bor", ""), ("broken", 70.0, "bu ham uzun", "")]
    utterances, texts = _utterances(rows)
    model = FakeTranscriber(texts)
    result = evaluate(
        model, [ModelSpec("base")], utterances, tmp_path, progress=False, options=TranscribeOptions(batch_size=8)
    )
    assert model.long_calls == 2 and model.n_clips == 2
    hypotheses = {h.id: h for h in result.models[0].hypotheses}
    assert hypotheses["long"].text == "uzun nutq matni" and hypotheses["long"].error is None
    assert "too long" in hypotheses["broken"].error and hypotheses["broken"].duration_s == 70.0
    # The failure is scored as an empty hypothesis: all three reference words are deletions.
    normalized = result.models[0].scores["normalized"].report
    assert normalized.utterances[3].counts.deletions == 3
    # Failures are not cached: a re-run retries them (and only them).
    again = FakeTranscriber(texts)
    evaluate(again, [ModelSpec("base")], utterances, tmp_path, progress=False)
    assert (again.n_clips, again.long_calls) == (0, 1)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["models"][0]["n_failed"] == 1 and summary["models"][0]["failed"][0]["id"] == "broken"


def test_scores_buckets_and_per_utterance_table(tmp_path):
    utterances, texts = _utterances()
    result = evaluate(FakeTranscriber(texts), [ModelSpec("base")], utterances, tmp_path, progress=False)
    scores = result.models[0].scores
    # Orthographic: case, punctuation and apostrophes all count; normalized folds them and spells digits.
    assert scores["orthographic"].report.corpus.n_word_errors > scores["normalized"].report.corpus.n_word_errors
    assert scores["normalized"].report.utterances[1].counts.n_word_errors == 0  # oʻzbekiston == o'zbekiston
    assert scores["normalized"].report.utterances[3].counts.n_word_errors == 0  # 5 ta == beshta
    # published drops the reference with a digit
    assert scores["published"].report.dropped == (3,) and len(scores["published"].report.utterances) == 4
    for score in scores.values():
        total = sum((b.counts for b in score.buckets), start=type(score.report.corpus)())
        assert total == score.report.corpus
        assert sum(b.n_utterances for b in score.buckets) == len(score.report.utterances)
    assert [b.label for b in scores["normalized"].buckets] == ["0-2 s", "2-5 s", "5-10 s", "10-20 s", "20-30 s"]

    rows = _read_tsv(tmp_path / "utterances.base.tsv")
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    errors = [int(r["errors_normalized"]) for r in rows]
    assert errors == sorted(errors, reverse=True) and rows[0]["id"] == "c"
    assert rows[0]["wer_normalized"] == "0.25" and rows[0]["hypothesis"] == "bugun havo juda yomon"
    assert {r["id"]: r["wer_published"] for r in rows}["d"] == ""  # dropped under published

    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    published = summary["models"][0]["scores"]["published"]
    assert published["n_dropped"] == 1 and "keep_reference" in published["normalizer"]
    assert summary["models"][0]["scores"]["normalized"]["wer"] == pytest.approx(1 / 15)
    confusions = _read_tsv(tmp_path / "confusions.tsv")
    assert {
        "model": "base",
        "normalizer": "normalized",
        "rank": "1",
        "reference": "yaxshi",
        "hypothesis": "yomon",
        "count": "1",
    } in confusions


def test_headline_table_names_each_normalization(tmp_path):
    utterances, texts = _utterances()
    result = evaluate(
        FakeTranscriber(texts),
        [ModelSpec("base")],
        utterances,
        tmp_path,
        progress=False,
        dataset={"spec": "fake.jsonl", "format": "jsonl", "split": "test"},
    )
    table = headline_table(result)
    lines = table.splitlines()
    assert lines[0].startswith("dataset: fake.jsonl (jsonl, split test): 5 utterances, 47.0 s")
    assert lines[1].split() == [
        "model",
        "utts",
        "failed",
        "WER",
        "orthographic",
        "CER",
        "orthographic",
        "WER",
        "normalized",
        "CER",
        "normalized",
        "WER",
        "published",
        "CER",
        "published",
        "n",
        "published",
        "RTFx",
    ]
    assert lines[2].split()[:3] == ["base", "5", "0"] and "6.67%" in lines[2]  # normalized WER 1/15
    assert lines[2].split()[-2] == "4"  # utterances scored under published
    assert "published: published (" in table and "drops references" in table
    assert (tmp_path / "headline.txt").read_text(encoding="utf-8").strip() == table


def test_report_says_which_published_figures_each_convention_matches(tmp_path):
    from ovoz.text import CONVENTION_NOTES

    utterances, texts = _utterances()
    normalizers = ["published", "whisper-basic", "normalized"]
    result = evaluate(FakeTranscriber(texts), [ModelSpec("base")], utterances, tmp_path, progress=False,
                      normalizers=normalizers, primary="published")
    table = headline_table(result)
    notes = [line for line in table.split("comparable with", 1)[1].splitlines()[1:] if line.startswith("  ")]
    assert [line.split(":")[0].strip() for line in notes] == normalizers
    for name, line in zip(normalizers, notes):
        assert CONVENTION_NOTES[name].matches in line and CONVENTION_NOTES[name].differs in line
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert list(summary["conventions"]) == normalizers
    assert summary["conventions"]["whisper-basic"]["matches"] == CONVENTION_NOTES["whisper-basic"].matches
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "comparable with figures computed with Whisper" in page


def test_score_hypotheses_rejects_mismatched_lengths():
    utterances, _ = _utterances()
    with pytest.raises(ValueError):
        score_hypotheses(utterances, [])


def test_base_unchanged_after_adapter(tiny_model, peft_adapter_dir, clips):
    from ovoz.audio import load_audio

    audio = [load_audio(c["path"]) for c in clips[:2]]
    options = TranscribeOptions(batch_size=2)

    def decode(model):
        return [(o.text, o.avg_logprob) for o in model.generate_clips(audio, options, max_new_tokens=[6, 6])]

    state = {k: v.clone() for k, v in tiny_model.model.state_dict().items()}
    before = decode(tiny_model)
    with tiny_model.with_adapter(peft_adapter_dir) as with_adapter:
        assert with_adapter.info.adapter == str(peft_adapter_dir) and not with_adapter.info.merged
        during = decode(with_adapter)
    after = decode(tiny_model)
    assert after == before
    assert [p for _, p in during] != [p for _, p in before]  # the adapter did change the model
    restored = tiny_model.model.state_dict()
    assert restored.keys() == state.keys()
    assert all(restored[k].equal(v) for k, v in state.items())
    with (
        pytest.raises(ConfigError, match="already carries an adapter"),
        tiny_model.with_adapter(peft_adapter_dir) as with_adapter,
        with_adapter.with_adapter(peft_adapter_dir),
    ):
        pass
    assert decode(tiny_model) == before


def test_read_corpus_makes_ids_unique(tmp_path, clips):
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"id": "x", "audio": clips[0]["path"], "text": "bir"},
        {"id": "x", "audio": clips[1]["path"], "text": "ikki"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    utterances, info = read_corpus(manifest)
    assert [u.id for u in utterances] == ["x", "x#2"]
    assert info["format"] == "jsonl" and info["n_skipped_rows"] == 1 and info["n_utterances"] == 2


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_eval_command_end_to_end(tiny_model_dir, peft_adapter_dir, clips, tmp_path, capsys, monkeypatch):
    from ovoz.cli import EXIT_OK, main
    from ovoz.transcriber import Transcriber

    out = tmp_path / "report"
    manifest = Path(clips[0]["path"]).parent / "manifest.jsonl"  # the real clips, as they are shipped
    argv = [
        "eval",
        str(manifest),
        "--base",
        str(tiny_model_dir),
        "--no-adapter",
        "--compare",
        f"lora={peft_adapter_dir}",
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--max-new-tokens",
        "4",
        "--batch-size",
        "4",
        "-o",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "WER normalized" in printed and printed.splitlines()[2].startswith("base ")
    assert printed.splitlines()[3].startswith("lora ")
    expected = {
        "summary.json",
        "headline.txt",
        "utterances.base.tsv",
        "utterances.lora.tsv",
        "confusions.tsv",
        "duration_buckets.tsv",
        "report.html",
        CACHE_FILE,
    }
    assert expected <= {p.name for p in out.iterdir()}

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_utterances"] == len(clips) == 7
    assert [m["name"] for m in summary["models"]] == ["base", "lora"]
    assert summary["models"][1]["model"]["merged"] is True  # the last adapter is merged: nothing needs the base
    for model in summary["models"]:
        assert model["n_failed"] == 0 and model["audio_s"] == pytest.approx(sum(c["duration"] for c in clips), abs=0.1)
        for name, score in model["scores"].items():
            assert score["normalizer"].startswith(name)
            assert score["n_scored"] + score["n_dropped"] == 7
            assert 0 < score["wer"] and math.isfinite(score["wer"])  # a random model: bad but finite
            assert sum(b["n_ref_words"] for b in score["duration_buckets"]) == score["n_ref_words"]
        assert len(_read_tsv(out / model["utterances_file"])) == 7

    page = (out / "report.html").read_text(encoding="utf-8")
    collector = _Collector()
    collector.feed(page)
    assert collector.tags.count("svg") == 4  # histogram + scatter per model
    for svg in page.split("<svg")[1:]:
        ElementTree.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed
    assert "published" in page and "keep_reference" in page

    # A re-run finds every hypothesis in the cache and makes no model call.
    calls = []
    original = Transcriber.generate_clips

    def counting(self, clips_, *args, **kwargs):
        calls.append(len(clips_))
        return original(self, clips_, *args, **kwargs)

    monkeypatch.setattr(Transcriber, "generate_clips", counting)
    assert main(argv) == EXIT_OK
    assert calls == []
    assert (
        json.loads((out / "summary.json").read_text(encoding="utf-8"))["models"][0]["scores"]
        == summary["models"][0]["scores"]
    )


def test_sort_by_a_filtering_normalization_puts_dropped_last(tmp_path):
    utterances, texts = _utterances()
    evaluate(
        FakeTranscriber(texts),
        [ModelSpec("base")],
        utterances,
        tmp_path,
        progress=False,
        normalizers=["published", "orthographic"],
        primary="published",
    )
    rows = _read_tsv(tmp_path / "utterances.base.tsv")
    assert rows[-1]["id"] == "d" and rows[-1]["errors_published"] == "" and rows[-1]["wer_orthographic"] != ""
    assert "wer_normalized" not in rows[0]


@pytest.mark.parametrize("normalizers, primary", [(["nope"], "nope"), (["normalized"], "published"), ([], "x")])
def test_bad_normalizer_choices(tmp_path, normalizers, primary):
    utterances, texts = _utterances()
    with pytest.raises(ConfigError):
        evaluate(
            FakeTranscriber(texts),
            [ModelSpec("base")],
            utterances,
            tmp_path,
            progress=False,
            normalizers=normalizers,
            primary=primary,
        )
