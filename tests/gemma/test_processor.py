"""ovoz's audio-only processor against transformers' own Gemma4Processor (where that imports)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ovoz.gemma.prompt import render_prompt


def real_processor(processor):
    try:
        from transformers.models.gemma4.processing_gemma4 import Gemma4Processor
    except ImportError as error:  # transformers 5.17 without torchvision
        pytest.skip(f"Gemma4Processor does not import here ({error})")
    from transformers.processing_utils import ProcessorMixin

    class AudioOnly(Gemma4Processor):  # Gemma4Processor's own code, without image/video processors
        def __init__(self, feature_extractor, tokenizer):
            for name in ("image_token_id", "boi_token", "eoi_token", "image_token"):
                setattr(self, name, getattr(tokenizer, name, None))
            self.image_seq_length, self.video_token, self.video_token_id = 0, None, None
            self.audio_seq_length, self.audio_ms_per_token = 750, 40
            for name in ("audio_token_id", "audio_token", "boa_token", "eoa_token"):
                setattr(self, name, getattr(tokenizer, name, None))
            ProcessorMixin.__init__(self, feature_extractor=feature_extractor, tokenizer=tokenizer)

    return AudioOnly(processor.feature_extractor, processor.tokenizer)


@pytest.mark.parametrize("lengths", [[16000], [8000, 16000 * 3 + 77, 1200], [160, 480000]])
def test_same_outputs_as_gemma4_processor(tiny_processor, lengths):
    rng = np.random.default_rng(len(lengths))
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths]
    prompt = render_prompt()
    ours = tiny_processor(text=[prompt] * len(clips), audio=clips, return_tensors="pt", padding=True)
    theirs = real_processor(tiny_processor)(text=[prompt] * len(clips), audio=clips, sampling_rate=16000,
                                           return_tensors="pt", padding=True, add_special_tokens=False)
    assert set(ours) == set(theirs)
    for key in theirs:
        assert torch.equal(torch.as_tensor(ours[key]), torch.as_tensor(theirs[key])), key


def test_token_count_without_features_matches_the_placeholders(tiny_processor):
    for n in (160, 16000, 16000 * 7 + 5, 480000):
        clip = np.zeros(n, dtype=np.float32)
        ids = tiny_processor(text=[render_prompt()], audio=[clip])["input_ids"][0]
        assert tiny_processor._compute_audio_num_tokens(clip, 16000) == int((ids == tiny_processor.audio_token_id).sum())


def test_save_and_load_round_trip(tiny_processor, tmp_path):
    from ovoz.gemma.processor import load_processor

    tiny_processor.save_pretrained(tmp_path)
    again = load_processor(tmp_path)
    clip = [np.ones(4000, dtype=np.float32) * 0.01]
    a = tiny_processor(text=[render_prompt()], audio=clip)
    b = again(text=[render_prompt()], audio=clip)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["input_features"], b["input_features"])
