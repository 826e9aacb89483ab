"""The torch feature path against the real Gemma 4 processor (ids, modality ids, features, masks)."""

from __future__ import annotations

import numpy as np
import pytest

from ovoz.audio import load_audio
from ovoz.gemma.features import prepare_inputs_torch, supported
from ovoz.gemma.generate import prepare_inputs
from ovoz.types import SYSTEM_PROMPT, USER_PROMPT


@pytest.fixture(scope="module")
def processor(tiny_model):
    return tiny_model.processor


def _batches(clips):
    rng = np.random.default_rng(0)
    real = [load_audio(c["path"]) for c in clips[:3]]
    odd = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (1, 159, 160, 321, 16_003, 480_000)]
    return [real, odd, [real[0]], real + odd]


def test_torch_inputs_match_the_processor(processor, clips):
    assert supported(processor)
    for batch in _batches(clips):
        reference = prepare_inputs(processor, batch, SYSTEM_PROMPT, USER_PROMPT)
        ours = prepare_inputs_torch(processor, batch, SYSTEM_PROMPT, USER_PROMPT, "cpu")
        assert set(ours) == {k for k in reference if k in ours}
        for key in ("input_ids", "attention_mask", "mm_token_type_ids", "input_features_mask"):
            assert ours[key].shape == reference[key].shape, key
            assert (ours[key].bool() if key.endswith("mask") else ours[key]).equal(
                reference[key].bool() if key.endswith("mask") else reference[key]
            ), key
        features = ours["input_features"]
        assert features.dtype == reference["input_features"].dtype
        assert features.shape == reference["input_features"].shape
        # float32 FFTs of numpy and torch round differently; the worst bins (near the mel floor) differ by
        # ~3e-4, a hundred times below bf16's resolution at these magnitudes (0.03), which the model sees.
        np.testing.assert_allclose(features.numpy(), reference["input_features"].numpy(), rtol=0, atol=1e-3)


def test_preemphasis_and_normalisation_match(processor, clips):
    from copy import deepcopy

    tuned = deepcopy(processor)
    extractor = tuned.feature_extractor
    extractor.preemphasis = 0.97
    extractor.per_bin_mean = np.linspace(-1, 1, extractor.feature_size).reshape(1, 1, -1)
    extractor.per_bin_stddev = np.linspace(0.5, 2, extractor.feature_size).reshape(1, 1, -1)
    batch = _batches(clips)[0]
    for htk in (True, False):
        extractor.preemphasis_htk_flavor = htk
        reference = prepare_inputs(tuned, batch, SYSTEM_PROMPT, USER_PROMPT)
        ours = prepare_inputs_torch(tuned, batch, SYSTEM_PROMPT, USER_PROMPT, "cpu")
        np.testing.assert_allclose(ours["input_features"].numpy(), reference["input_features"].numpy(), atol=1e-3)


def test_dither_is_left_to_the_processor(processor):
    from copy import deepcopy

    dithered = deepcopy(processor)
    dithered.feature_extractor.dither = 1e-5
    assert not supported(dithered)


def test_prompts_are_left_padded_whatever_the_tokenizer_says(clips):
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    from ovoz.gemma.processor import build_processor
    from ovoz.gemma.testing import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.padding_side = "right"
    extractor = Gemma4AudioFeatureExtractor()
    extractor.padding_side = "right"
    processor = build_processor(extractor, tokenizer)
    batch = [np.zeros(16_000, np.float32) + 0.01, np.zeros(48_000, np.float32) + 0.01]
    for inputs in (prepare_inputs(processor, batch, SYSTEM_PROMPT, USER_PROMPT),
                   prepare_inputs_torch(processor, batch, SYSTEM_PROMPT, USER_PROMPT, "cpu")):
        mask = inputs["attention_mask"]
        assert mask[0, 0] == 0 and mask[0, -1] == 1 and bool(mask[1].all())
