"""Batched greedy generation for clips of at most 30 s.

Every path (CLI, long recordings, evaluation, server) goes through :func:`generate`. This is the plain
Hugging Face ``generate`` path; it returns the generated token ids, the decoded text and a confidence.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..decoding import Decoded, DecodeStats
from ..errors import AudioTooLongError
from ..types import MAX_CLIP_SAMPLES, SAMPLE_RATE
from .prompt import EOS, TURN_END, render_prompt

logger = logging.getLogger(__name__)


class TextCallbackStreamer:
    """A transformers streamer that hands newly decoded text of a batch-1 generation to a callback."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None], stop_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.stop_ids = stop_ids
        self.ids: list[int] = []
        self.sent = 0
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            if token in self.stop_ids:
                continue
            self.ids.append(token)
        self._flush(final=False)

    def _flush(self, final: bool) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):  # maybe an incomplete UTF-8 sequence: wait for more
            return
        if len(text) > self.sent:
            self.on_text(text[self.sent :])
            self.sent = len(text)

    def end(self) -> None:
        self._flush(final=True)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The ids of :data:`ovoz.gemma.prompt.STOP_TOKENS` (``<turn|>``, eos) in this tokenizer: where the answer ends."""
    ids = []
    for token in (TURN_END, tokenizer.eos_token or EOS):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    return ids


def check_clip(clip: np.ndarray) -> None:
    """Raise :class:`AudioTooLongError` for a clip over 30 s (one prompt holds at most that)."""
    if len(clip) > MAX_CLIP_SAMPLES:
        raise AudioTooLongError(
            f"<clip of {len(clip) / SAMPLE_RATE:.1f} s>",
            "one prompt holds at most 30 s; split the audio first (ovoz.pipeline does).",
        )


def prepare_inputs(processor: Any, clips: Sequence[np.ndarray], system: str, user: str, device: Any = None) -> Any:
    """Tokenize the trained prompt and extract audio features for a batch of 16 kHz clips.

    With a CUDA ``device`` the features are computed there with torch (:mod:`ovoz.gemma.features`, same values as the
    processor's numpy code, which otherwise runs).
    """
    for clip in clips:
        check_clip(clip)
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        from . import features

        if features.supported(processor):
            return features.prepare_inputs_torch(processor, clips, system, user, device)
    prompt = render_prompt(system, user)
    return processor(
        text=[prompt] * len(clips),
        audio=[np.asarray(clip, dtype=np.float32) for clip in clips],
        sampling_rate=SAMPLE_RATE,
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,  # the prompt already starts with <bos>
    )


def generate(
    model: Any,
    processor: Any,
    clips: Sequence[np.ndarray],
    *,
    max_new_tokens: int | Sequence[int] = 256,
    system: str,
    user: str,
    on_text: Callable[[str], None] | None = None,
    stats: DecodeStats | None = None,
) -> list[Decoded]:
    """Greedy transcription of a batch of clips (16 kHz mono float32, each at most 30 s).

    ``max_new_tokens`` is one cap for all clips or one per clip. ``on_text`` (batch of one only) receives
    text as it is generated.
    """
    import torch

    if not clips:
        return []
    caps = [max_new_tokens] * len(clips) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(caps) != len(clips):
        raise ValueError("max_new_tokens needs one value per clip")
    if on_text is not None and len(clips) != 1:
        raise ValueError("streaming text needs a batch of one clip")
    tokenizer = processor.tokenizer
    stops = stop_token_ids(tokenizer)
    device = model.device
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype

    started = time.perf_counter()
    inputs = prepare_inputs(processor, clips, system, user)
    inputs = {
        key: value.to(device, dtype=dtype) if key == "input_features" else value.to(device)
        for key, value in inputs.items()
    }
    features_done = time.perf_counter()
    streamer = TextCallbackStreamer(tokenizer, on_text, set(stops)) if on_text else None
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=max(caps),
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
            return_dict_in_generate=True,
            output_scores=True,
            streamer=streamer,
        )
    prompt_length = inputs["input_ids"].shape[1]
    new_tokens = output.sequences[:, prompt_length:].cpu()
    logprobs = torch.stack(output.scores, dim=1).float().log_softmax(-1)
    chosen = logprobs.gather(-1, new_tokens.to(logprobs.device).unsqueeze(-1)).squeeze(-1).cpu()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    finished = time.perf_counter()

    results = []
    for row, cap in enumerate(caps):
        ids = new_tokens[row].tolist()
        stopped = False
        length = len(ids)
        for position, token in enumerate(ids):
            if token in stops:
                length, stopped = position, True
                break
        if length > cap:
            length, stopped = cap, False
        counted = length + (1 if stopped else 0)  # the stop token's probability counts too
        avg = float(chosen[row, :counted].mean()) if counted else None
        text = tokenizer.decode(ids[:length], skip_special_tokens=True).strip()
        results.append(Decoded(text, tuple(ids[:length]), avg, stopped))
    if stats is not None:
        stats.features_s += features_done - started
        stats.generate_s += finished - features_done
        stats.n_clips += len(clips)
        stats.n_new_tokens += sum(len(r.token_ids) for r in results)
    return results
