"""Build the demo model's random-initialised folder: a BPE tokenizer trained on Uzbek text, a small Gemma 4 config.

The tokenizer is a byte-level BPE (every UTF-8 text round-trips) trained with the ``tokenizers`` library on the
training split's sentences only (``ovoz.data.synth.split_of``: no dev or test sentence shapes the vocabulary),
written as the normalized transcripts the model is trained on, plus the trained prompt. Its vocabulary starts
with Gemma 4's special tokens (pad 0, eos 1, bos 2, ...) and it carries Gemma 4's chat template, through
:func:`ovoz.gemma.testing.build_tokenizer`. The folder is written by :func:`ovoz.gemma.testing.save_model_folder` with
transformers' own initialisation.

Sizes: about 6.3 M parameters, 12.6 MB of bf16 safetensors, so the model and its LoRA adapter fit in the package.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

VOCAB_SIZE = 2048
TEXT = dict(
    hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1,
    head_dim=64, global_head_dim=128, hidden_size_per_layer_input=32, num_kv_shared_layers=2, sliding_window=128,
    layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    max_position_embeddings=2048,
)
"""The text tower: 4 decoder layers of width 192 (the last 2 share the KV of earlier ones, as in E4B)."""
AUDIO = dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=4, subsampling_conv_channels=[128, 32],
             output_proj_dims=192)
"""The audio tower: 4 conformer layers of width 192 (E4B: 12 of 1024), 40 ms per output frame as in E4B."""


def training_text(sentences: Iterable[str], *, normalizer: str = "normalized") -> list[str]:
    """The train-split sentences as the model writes them (normalized), with the trained prompt's text."""
    from ..data.synth import SynthOptions, clean_sentence, split_of
    from ..text import get_normalizer
    from ..types import SYSTEM_PROMPT, USER_PROMPT

    options = SynthOptions()
    normalize = get_normalizer(normalizer)
    lines = [SYSTEM_PROMPT, USER_PROMPT, "system", "user", "model"]
    for sentence in sentences:
        cleaned = clean_sentence(sentence)
        if cleaned and split_of(cleaned, options.dev_fraction, options.test_fraction) == "train":
            lines.append(normalize(cleaned))
    return lines


def train_tokenizer(lines: Iterable[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE trained on ``lines``, wrapped with Gemma 4's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from ..gemma.testing import SPECIAL_TOKENS, build_tokenizer

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False, min_frequency=2,
    )
    core.train_from_iterator(list(lines), trainer=trainer)
    for index, token in enumerate(SPECIAL_TOKENS):
        assert core.token_to_id(token) == index, token
    return build_tokenizer(core)


def save_demo_folder(folder: str | Path, sentences: Iterable[str], *, vocab_size: int = VOCAB_SIZE,
                     seed: int = 0) -> Path:
    """Write the random-initialised demo model folder (float32) that ``ovoz train --train-mode full`` starts from."""
    from ..gemma.testing import save_model_folder

    tokenizer = train_tokenizer(training_text(sentences), vocab_size)
    folder = save_model_folder(folder, "tiny", seed=seed, tokenizer=tokenizer, text=TEXT, audio=AUDIO, widen=False)
    logger.info("demo model folder (random weights, %d tokens) written to %s", len(tokenizer), folder)
    return folder
