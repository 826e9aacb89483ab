"""Gemma 4's audio processor without its image and video parts: tokenizer + audio feature extractor.

transformers' ``Gemma4Processor`` insists on an image and a video processor, and on transformers 5.17 importing
its module imports torchvision, which a CPU machine with the CPU build of torch usually cannot import. Speech needs
neither, so :class:`AudioProcessor` does the processor's audio work with transformers' own feature extractor and
tokenizer: it calls ``Gemma4AudioFeatureExtractor`` as the processor does (no extra arguments), expands each prompt's
audio placeholder to ``<|audio>`` + N x ``<|audio|>`` + ``<audio|>`` where N is the frame mask after the encoder's two
stride-2 convolutions (the processor's ``replace_audio_token``), and tokenizes. ``tests/gemma/test_processor.py``
checks it against ``Gemma4Processor`` wherever that imports.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from transformers.processing_utils import ProcessorMixin

from ..types import AUDIO_TOKENS_PER_S, MAX_AUDIO_TOKENS, SAMPLE_RATE

logger = logging.getLogger(__name__)

PROCESSOR_DEFAULTS = {"audio_seq_length": MAX_AUDIO_TOKENS, "audio_ms_per_token": 1000 // AUDIO_TOKENS_PER_S}
CONFIG_NAME = "processor_config.json"
AUDIO_TYPE_ID = 3
"""``mm_token_type_ids`` of an audio placeholder (1 image, 2 video, 0 text)."""


def placeholder_counts(mask: Any) -> list[int]:
    """Audio placeholders per clip from the feature extractor's frame mask [b, frames]: the mask after the encoder's two
    stride-2 convolutions, summed (``Gemma4Processor.replace_audio_token``)."""
    counts = []
    for row in np.asarray(mask):
        for _ in range(2):
            t_out = (len(row) + 2 - 3) // 2 + 1
            row = row[::2][:t_out]
        counts.append(int(row.sum()))
    return counts


class AudioProcessor(ProcessorMixin):
    """The audio half of ``Gemma4Processor``: ``processor(text=[...], audio=[...])`` gives ``input_ids``,
    ``attention_mask``, ``mm_token_type_ids``, ``input_features`` and ``input_features_mask``.

    A ``ProcessorMixin`` for the libraries that check for one (TRL's ``SFTTrainer``), but built without its
    ``__init__`` (which looks the parts' classes up by name) and with its own ``__call__`` and ``save_pretrained``."""

    attributes = ["feature_extractor", "tokenizer"]

    def __init__(self, feature_extractor: Any, tokenizer: Any, chat_template: str | None = None,
                 audio_seq_length: int = MAX_AUDIO_TOKENS, audio_ms_per_token: int = 40) -> None:
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        self.audio_seq_length = audio_seq_length
        self.audio_ms_per_token = audio_ms_per_token
        for name in ("audio_token", "boa_token", "eoa_token", "audio_token_id"):
            setattr(self, name, getattr(tokenizer, name, None))
        self.image_token_id = getattr(tokenizer, "image_token_id", None)
        self.video_token_id = None

    def __call__(self, text: Sequence[str] | str, audio: Sequence[np.ndarray] | None = None, *,
                 sampling_rate: int = SAMPLE_RATE, return_tensors: str = "pt", padding: bool | str = True,
                 add_special_tokens: bool = False, **tokenizer_kwargs: Any) -> Any:
        import torch
        from transformers import BatchFeature

        texts = [text] if isinstance(text, str) else list(text)
        data: dict[str, Any] = {}
        if audio is not None and len(audio):
            features = self.feature_extractor([np.asarray(a, dtype=np.float32) for a in audio],
                                              sampling_rate=sampling_rate, return_tensors="pt")
            data.update(features)
            counts = placeholder_counts(features["input_features_mask"])
            if len(counts) != len(texts) or any(t.count(self.audio_token) != 1 for t in texts):
                raise ValueError("give one text per clip, each holding exactly one audio placeholder")
            texts = [t.replace(self.audio_token, f"{self.boa_token}{self.audio_token * n}{self.eoa_token}")
                     for t, n in zip(texts, counts)]
        encoded = self.tokenizer(texts, padding=padding, return_tensors="pt", add_special_tokens=add_special_tokens,
                                 **tokenizer_kwargs)
        ids = encoded["input_ids"]
        types = torch.zeros_like(ids)
        types[ids == self.audio_token_id] = AUDIO_TYPE_ID
        data = {"input_ids": ids, "attention_mask": encoded["attention_mask"], "mm_token_type_ids": types, **data}
        return BatchFeature(data, tensor_type=return_tensors)

    def _compute_audio_num_tokens(self, audio_waveform: Any, sampling_rate: int) -> int:
        """Audio placeholders for one waveform (what ``__call__`` inserts for it alone)."""
        from .features import PAD_TO_MULTIPLE_OF, frame_mask

        n = len(audio_waveform)
        width = -(-n // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF
        return min(placeholder_counts(frame_mask(self.feature_extractor, np.array([n]), width))[0],
                   self.audio_seq_length)

    def decode(self, *args: Any, **kwargs: Any) -> str:
        return self.tokenizer.decode(*args, **kwargs)

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(*args, **kwargs)

    def __repr__(self) -> str:
        return f"AudioProcessor(tokenizer={type(self.tokenizer).__name__}, audio_seq_length={self.audio_seq_length})"

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> None:
        """Write the tokenizer, the feature extractor and ``processor_config.json`` (loadable by ``load_processor``
        and by transformers' ``AutoProcessor`` where torchvision imports)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        self.feature_extractor.save_pretrained(folder)
        config = {"processor_class": "Gemma4Processor", "audio_seq_length": self.audio_seq_length,
                  "audio_ms_per_token": self.audio_ms_per_token}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_processor(feature_extractor: Any, tokenizer: Any, **settings: Any) -> AudioProcessor:
    """An audio-only Gemma 4 processor from its two parts."""
    # Batched generation (plain generate and the static engine) wants prompts left-padded, whatever the
    # tokenizer's saved default; the training collator pads by itself.
    tokenizer.padding_side = "left"
    params = {**PROCESSOR_DEFAULTS, **{k: v for k, v in settings.items() if k in PROCESSOR_DEFAULTS}}
    processor = AudioProcessor(feature_extractor, tokenizer, **params)
    missing = [name for name in ("audio_token", "boa_token", "eoa_token") if getattr(processor, name) is None]
    if missing:
        from ..errors import ModelLoadError

        raise ModelLoadError(
            f"the tokenizer defines no {', '.join(missing)}: it is not a Gemma 4 audio tokenizer. "
            "Point --base at a Gemma 4 model (e.g. unsloth/gemma-4-E4B-it)."
        )
    return processor


def load_processor(folder: str | Path, **hub_kwargs: Any) -> AudioProcessor:
    """Load tokenizer + audio feature extractor from a local folder (already resolved from the hub)."""
    from transformers import AutoTokenizer
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, **hub_kwargs)
    settings: dict[str, Any] = {}
    feature_settings: dict[str, Any] = {}
    config_file = folder / CONFIG_NAME
    if config_file.exists():
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        settings = {k: saved[k] for k in PROCESSOR_DEFAULTS if k in saved}
        feature_settings = dict(saved.get("feature_extractor", {}))
    if (folder / "preprocessor_config.json").exists():
        feature_extractor = Gemma4AudioFeatureExtractor.from_pretrained(folder, **hub_kwargs)
    else:
        feature_settings.pop("feature_extractor_type", None)
        feature_extractor = Gemma4AudioFeatureExtractor(**feature_settings)
    # Right padding: transformers < 5.10 miscounted audio placeholders otherwise.
    feature_extractor.padding_side = "right"
    return build_processor(feature_extractor, tokenizer, **settings)
