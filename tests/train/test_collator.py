"""The collator: the trained prompt, left padding, and labels on the transcript + <turn|> only."""

from __future__ import annotations

import numpy as np
import pytest

from ovoz.gemma.prompt import render_answer
from ovoz.types import SYSTEM_PROMPT, USER_PROMPT

TEXTS = ["Salom dunyo", "Bugun havo juda yaxshi, o'zbek tili"]


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from ovoz.gemma.processor import load_processor

    return load_processor(tiny_model_dir)


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(0)
    return [{"audio": rng.standard_normal(n).astype(np.float32) * 0.1, "text": text}
            for n, text in zip((16_000, 40_000), TEXTS)]


def _unmasked(batch, row):
    labels = batch["labels"][row]
    return labels[labels != -100].tolist()


def test_unmasked_labels_decode_to_exactly_the_transcript_and_turn_end(processor, examples):
    from ovoz.train.collator import AudioCollator

    batch = AudioCollator(processor)(examples)
    for row, text in enumerate(TEXTS):
        assert processor.tokenizer.decode(_unmasked(batch, row)) == render_answer(text) == text + "<turn|>"


def test_rows_are_the_inference_prompt_then_the_answer_left_padded(processor, examples):
    from ovoz.gemma.generate import prepare_inputs
    from ovoz.train.collator import AudioCollator

    collator = AudioCollator(processor)
    batch = collator(examples)
    assert set(batch) == {"input_ids", "attention_mask", "mm_token_type_ids", "input_features",
                          "input_features_mask", "labels"}
    inference = prepare_inputs(processor, [e["audio"] for e in examples], SYSTEM_PROMPT, USER_PROMPT)
    for row, example in enumerate(examples):
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        prompt = inference["input_ids"][row][inference["attention_mask"][row].bool()].tolist()
        assert ids == prompt + collator.answer_ids(example["text"])
        assert batch["input_ids"][row, -1] == collator.turn_end_id  # every transcript ends at the last position
        assert batch["attention_mask"][row, -1] == 1
    assert (batch["attention_mask"][0] == 0).any()  # the shorter row is padded on the left
    assert batch["attention_mask"][0, 0] == 0
    assert (batch["input_features"] == inference["input_features"]).all()


def test_loss_on_prompt_keeps_prompt_text_but_masks_padding_and_audio(processor, examples):
    from ovoz.train.collator import AudioCollator

    collator = AudioCollator(processor, loss_on_prompt=True)
    batch = collator(examples)
    audio_ids = collator.masked_ids - {collator.pad_id}
    for row, text in enumerate(TEXTS):
        labels = batch["labels"][row]
        ids = batch["input_ids"][row]
        real = batch["attention_mask"][row].bool()
        assert (labels[~real] == -100).all()  # padding
        for token in audio_ids:
            assert (labels[ids == token] == -100).all()  # <|audio>, <|audio|> x N, <audio|>
        decoded = processor.tokenizer.decode(labels[labels != -100].tolist())
        assert decoded.endswith("model\n" + text + "<turn|>")
        assert "You are an assistant that transcribes speech accurately." in decoded
        assert "<|audio|>" not in decoded


@pytest.mark.parametrize("loss_on_prompt", [False, True])
@pytest.mark.parametrize("lengths", [(16_000, 40_000), (16_000, 16_050), (12_345, 7_777, 30_001)])
def test_device_features_give_the_same_tokens_and_the_processor_s_features(processor, lengths, loss_on_prompt):
    """The collator that leaves the features to the GPU: same ids, masks, modality ids and labels, and the
    features computed from its waveforms (``ovoz.gemma.features.with_features``) match the processor's."""
    import torch

    from ovoz.gemma.features import WAVEFORM_LENGTHS, WAVEFORMS, with_features
    from ovoz.train.collator import AudioCollator

    rng = np.random.default_rng(len(lengths))
    examples = [{"audio": rng.standard_normal(n).astype(np.float32) * 0.1, "text": TEXTS[i % 2]}
                for i, n in enumerate(lengths)]
    reference = AudioCollator(processor, loss_on_prompt=loss_on_prompt)(examples)
    batch = AudioCollator(processor, loss_on_prompt=loss_on_prompt, features_on_device=True)(examples)
    assert set(batch) == set(reference) - {"input_features", "input_features_mask"} | {WAVEFORMS, WAVEFORM_LENGTHS}
    for key in ("input_ids", "attention_mask", "mm_token_type_ids", "labels"):
        assert torch.equal(batch[key], reference[key]), key
    computed = with_features(processor.feature_extractor, batch)
    assert WAVEFORMS not in computed and WAVEFORM_LENGTHS not in computed
    assert torch.equal(computed["input_features_mask"], reference["input_features_mask"])
    torch.testing.assert_close(computed["input_features"], reference["input_features"], rtol=0, atol=1e-3)
    assert with_features(processor.feature_extractor, reference) is reference  # processor features: untouched
