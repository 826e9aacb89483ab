"""An audio-only Gemma 4 processor: the real ``Gemma4Processor`` code without image/video parts.

``Gemma4Processor`` insists on an image and a video processor; transformers only provides the video one
when torchvision imports, which a CPU machine with the CPU build of torch usually lacks. Speech needs
neither, so this subclass is built from the feature extractor and the tokenizer alone and inherits
everything else (audio placeholder expansion, ``mm_token_type_ids``) unchanged.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROCESSOR_DEFAULTS = {"audio_seq_length": 750, "audio_ms_per_token": 40}


@functools.cache
def audio_processor_class() -> type:
    """Create (once) the audio-only subclass of transformers' ``Gemma4Processor``."""
    from transformers.models.gemma4.processing_gemma4 import Gemma4Processor
    from transformers.processing_utils import ProcessorMixin

    class Gemma4AudioProcessor(Gemma4Processor):
        def __init__(
            self,
            feature_extractor: Any,
            tokenizer: Any,
            chat_template: str | None = None,
            audio_seq_length: int = 750,
            audio_ms_per_token: int = 40,
            **kwargs: Any,
        ) -> None:
            # Same attributes as Gemma4Processor.__init__, minus the image/video processors.
            self.image_seq_length = 0
            self.image_token_id = getattr(tokenizer, "image_token_id", None)
            self.boi_token = getattr(tokenizer, "boi_token", None)
            self.eoi_token = getattr(tokenizer, "eoi_token", None)
            self.image_token = getattr(tokenizer, "image_token", None)
            self.video_token = None
            self.video_token_id = None
            self.audio_seq_length = audio_seq_length
            self.audio_ms_per_token = audio_ms_per_token
            self.audio_token_id = getattr(tokenizer, "audio_token_id", None)
            self.audio_token = getattr(tokenizer, "audio_token", None)
            self.boa_token = getattr(tokenizer, "boa_token", None)
            self.eoa_token = getattr(tokenizer, "eoa_token", None)
            ProcessorMixin.__init__(
                self, feature_extractor=feature_extractor, tokenizer=tokenizer, chat_template=chat_template, **kwargs
            )

    return Gemma4AudioProcessor


def build_processor(feature_extractor: Any, tokenizer: Any, **settings: Any) -> Any:
    """An audio-only Gemma 4 processor from its two parts."""
    # Batched generation (plain generate and the static engine) wants prompts left-padded, whatever the
    # tokenizer's saved default; the training collator pads by itself.
    tokenizer.padding_side = "left"
    params = {**PROCESSOR_DEFAULTS, **{k: v for k, v in settings.items() if k in PROCESSOR_DEFAULTS}}
    processor = audio_processor_class()(feature_extractor, tokenizer, **params)
    missing = [name for name in ("audio_token", "boa_token", "eoa_token") if getattr(processor, name) is None]
    if missing:
        from ..errors import ModelLoadError

        raise ModelLoadError(
            f"the tokenizer defines no {', '.join(missing)}: it is not a Gemma 4 audio tokenizer. "
            "Point --base at a Gemma 4 model (e.g. unsloth/gemma-4-E4B-it)."
        )
    return processor


def load_processor(folder: str | Path, **hub_kwargs: Any) -> Any:
    """Load tokenizer + audio feature extractor from a local folder (already resolved from the hub)."""
    from transformers import AutoTokenizer
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, **hub_kwargs)
    settings: dict[str, Any] = {}
    feature_settings: dict[str, Any] = {}
    config_file = folder / "processor_config.json"
    if config_file.exists():
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        settings = {k: saved[k] for k in PROCESSOR_DEFAULTS if k in saved}
        feature_settings = dict(saved.get("feature_extractor", {}))
    if (folder / "preprocessor_config.json").exists():
        feature_extractor = Gemma4AudioFeatureExtractor.from_pretrained(folder, **hub_kwargs)
    else:
        feature_settings.pop("feature_extractor_type", None)
        feature_extractor = Gemma4AudioFeatureExtractor(**feature_settings)
    # Right padding: transformers < 5.10 miscounted audio placeholders otherwise (GEMMA4.md).
    feature_extractor.padding_side = "right"
    return build_processor(feature_extractor, tokenizer, **settings)
