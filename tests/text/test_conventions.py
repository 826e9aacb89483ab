"""Scoring conventions: a note per normalizer for reports, and whisper-basic selectable wherever a name is."""

import pytest

from ovoz.text import CONVENTION_NOTES, ConventionNote, available_normalizers, get_normalizer


def test_every_normalizer_has_a_note():
    assert set(CONVENTION_NOTES) == set(available_normalizers())
    for name, note in CONVENTION_NOTES.items():
        assert isinstance(note, ConventionNote) and note.name == name
        assert note.matches and note.differs
        assert note.describe().startswith(f"{name}: matches ")


def test_notes_say_what_each_convention_matches():
    assert "BasicTextNormalizer" in CONVENTION_NOTES["whisper-basic"].matches
    assert "digits" in CONVENTION_NOTES["published"].matches
    assert "no published figure" in CONVENTION_NOTES["normalized"].matches


# Pairs scored under Whisper's normalizer and under ovoz's: the ASCII apostrophe splits o'zbek in two.
PAIRS = [("O'zbekiston poytaxti", "oʻzbekiston poytaxti"), ("5 ta kitob", "beshta kitob")]


def test_whisper_basic_scores_by_name():
    from ovoz.eval.metrics import score

    whisper = score(PAIRS, "whisper-basic")
    assert whisper.normalizer == "whisper-basic (whisper_basic > collapse_whitespace)"
    assert [u.reference for u in whisper.utterances] == ["o zbekiston poytaxti", "5 ta kitob"]
    assert whisper.corpus.n_ref_words == 6 and whisper.corpus.n_word_errors == 4
    assert score(PAIRS, "normalized").corpus.n_word_errors == 0


def test_whisper_basic_is_selectable_in_an_evaluation():
    from ovoz.data import AudioArray, Utterance
    from ovoz.eval.results import Hypothesis
    from ovoz.eval.score import check_normalizers, score_hypotheses

    assert check_normalizers(["normalized", "whisper-basic"], "whisper-basic") == ("normalized", "whisper-basic")
    utterances = [Utterance(str(i), AudioArray([0.0], 16000), ref) for i, (ref, _) in enumerate(PAIRS)]
    hypotheses = [Hypothesis(str(i), hyp, 1.0) for i, (_, hyp) in enumerate(PAIRS)]
    scores = score_hypotheses(utterances, hypotheses, ["whisper-basic"])
    assert scores["whisper-basic"].report.corpus.n_word_errors == 4


@pytest.mark.parametrize("name", available_normalizers())
def test_every_convention_runs_on_uzbek_text(name):
    assert isinstance(get_normalizer(name)("Oʻzbekiston, 2025-yil 18-sentabr: 25 ta «kitob»."), str)
