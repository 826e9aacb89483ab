"""The batch collator: the trained prompt + transcript + ``<turn|>``, labels masked for the loss.

Each row is the prompt exactly as inference builds it (the processor expands the audio placeholder), followed by
the transcript's tokens and the ``<turn|>`` id (what generation produces and stops at). Rows are LEFT-padded so
that every transcript ends at the last position: the loss then only needs the last few positions' logits, and
Gemma 4's KV-shared layers run on those positions only (see ``loss.py``).

Labels: -100 everywhere except the transcript and ``<turn|>`` (default). With ``loss_on_prompt=True`` (the seed
notebook's behaviour) the prompt text is in the loss too; padding and the audio placeholders (``<|audio>``,
``<|audio|>`` x N, ``<audio|>``) are always masked.

With ``features_on_device=True`` the collator leaves the log-mel features out: it returns the padded waveforms
(``input_waveforms``, ``input_waveform_lengths``) and the trainer computes the features on the GPU
(:func:`ovoz.gemma.features.with_features`, the same arithmetic as the processor's). The token ids are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..gemma.prompt import AUDIO, AUDIO_END, AUDIO_START, TURN_END, render_prompt
from ..types import SAMPLE_RATE, SYSTEM_PROMPT, USER_PROMPT

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


class AudioCollator:
    """Builds ``input_ids, attention_mask, mm_token_type_ids, input_features, input_features_mask, labels``."""

    def __init__(
        self,
        processor: Any,
        *,
        system: str = SYSTEM_PROMPT,
        user: str = USER_PROMPT,
        loss_on_prompt: bool = False,
        features_on_device: bool = False,
    ) -> None:
        self.processor = processor
        self.features_on_device = features_on_device
        self.tokenizer = processor.tokenizer
        self.prompt = render_prompt(system, user)
        self.loss_on_prompt = loss_on_prompt
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.turn_end_id = self._token_id(TURN_END)
        self.masked_ids = {self.pad_id, *(self._token_id(t) for t in (AUDIO, AUDIO_START, AUDIO_END))}

    def _token_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            from ..errors import ModelLoadError

            raise ModelLoadError(f"the tokenizer has no {token} token: it is not a Gemma 4 tokenizer.")
        return int(token_id)

    def answer_ids(self, text: str) -> list[int]:
        """The target tokens: the transcript, then ``<turn|>`` (the id generation stops at)."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids) + [self.turn_end_id]

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import numpy as np
        import torch

        clips = [np.asarray(example["audio"], dtype=np.float32) for example in examples]
        audio: dict[str, Any]
        if self.features_on_device:
            prompt_rows, audio = self._prompts_without_features(clips)
        else:
            prompts = self.processor(
                text=[self.prompt] * len(examples),
                audio=clips,
                sampling_rate=SAMPLE_RATE,
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,  # the prompt starts with <bos>
            )
            keeps = prompts["attention_mask"].bool()
            prompt_rows = [(prompts["input_ids"][i][keep].tolist(), prompts["mm_token_type_ids"][i][keep].tolist())
                           for i, keep in enumerate(keeps)]
            audio = {"input_features": prompts["input_features"],
                     "input_features_mask": prompts["input_features_mask"]}
        rows = []
        for example, (prompt_ids, prompt_types) in zip(examples, prompt_rows):
            answer = self.answer_ids(example["text"])
            if self.loss_on_prompt:
                prompt_labels = [IGNORE_INDEX if t in self.masked_ids else t for t in prompt_ids]
                prompt_labels[0] = IGNORE_INDEX  # <bos> is never predicted
            else:
                prompt_labels = [IGNORE_INDEX] * len(prompt_ids)
            rows.append((prompt_ids + answer, prompt_types + [0] * len(answer), prompt_labels + answer))
        length = max(len(ids) for ids, _, _ in rows)
        batch = {
            "input_ids": torch.full((len(rows), length), self.pad_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(rows), length), dtype=torch.long),
            "mm_token_type_ids": torch.zeros((len(rows), length), dtype=torch.long),
            "labels": torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long),
        }
        for index, (ids, types, labels) in enumerate(rows):
            start = length - len(ids)  # left padding: every transcript ends at the last position
            batch["input_ids"][index, start:] = torch.tensor(ids)
            batch["attention_mask"][index, start:] = 1
            batch["mm_token_type_ids"][index, start:] = torch.tensor(types)
            batch["labels"][index, start:] = torch.tensor(labels)
        batch.update(audio)
        return batch

    def _prompts_without_features(self, clips: list[Any]) -> tuple[list[tuple[list[int], list[int]]], dict]:
        """Prompt ids and modality ids per clip, and the padded waveforms: the processor's placeholder count
        (from the frame mask) without computing the features."""
        import torch

        from ..gemma import features as F

        waveform, lengths = F.pad_waveforms(clips)
        counts = F.audio_token_counts(F.frame_mask(self.processor.feature_extractor, lengths, waveform.shape[1]))
        texts = F.expand_audio_placeholder(self.processor, self.prompt, counts)
        rows = []
        for ids in self.tokenizer(texts, add_special_tokens=False).input_ids:
            ids = list(ids)
            rows.append((ids, F.modality_ids(self.processor, torch.tensor(ids)).tolist()))
        return rows, {F.WAVEFORMS: waveform, F.WAVEFORM_LENGTHS: torch.tensor(lengths, dtype=torch.long)}
