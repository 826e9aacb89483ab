"""Gemma 4 model inputs (token ids + log-mel features) built with torch, on the model's device.

``Gemma4Processor`` computes log-mel features with numpy, one clip at a time, on the CPU: 6-9 ms a 10 s clip,
which at batch 128 took longer than the language model's whole decode (BENCHMARKS.md). This module does the
same arithmetic as ``Gemma4AudioFeatureExtractor`` (semicausal padding, framing, window, real FFT, HTK mel
filters, log with floor, per-bin normalisation, frame-aware mask) as a handful of batched torch operations,
and expands and tokenizes the prompt as the processor does (one audio placeholder per 40 ms after the
encoder's two stride-2 convolutions). ``tests/test_features.py`` checks both against the real processor.

The processor stays the reference: it is used whenever a setting is not reproduced here (dither).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .prompt import render_prompt

PAD_TO_MULTIPLE_OF = 128
"""The feature extractor pads a batch's waveforms to a multiple of this many samples."""


def supported(processor: Any) -> bool:
    """Whether the torch path reproduces this processor's features (it does not add random dither)."""
    extractor = getattr(processor, "feature_extractor", None)
    return (
        extractor is not None
        and type(extractor).__name__ == "Gemma4AudioFeatureExtractor"
        and float(getattr(extractor, "dither", 0.0)) == 0.0
        and getattr(extractor, "padding_side", "right") == "right"
    )


def _frame_mask(lengths: np.ndarray, n_frames: int, frame_length: int, hop: int) -> np.ndarray:
    """[b, frames]: a frame is valid when the last sample of its window is real audio (the extractor's rule)."""
    pad_left = frame_length // 2
    last_sample = np.arange(n_frames) * hop + frame_length  # index into the left-padded waveform
    return (last_sample[None, :] >= pad_left) & (last_sample[None, :] < pad_left + lengths[:, None])


def audio_token_counts(mask: np.ndarray) -> list[int]:
    """Audio placeholders per clip: the frame mask after the encoder's two stride-2 convolutions."""
    counts = []
    for row in mask:
        for _ in range(2):
            t_out = (len(row) + 2 - 3) // 2 + 1
            row = row[::2][:t_out]
        counts.append(int(row.sum()))
    return counts


def pad_waveforms(clips: Sequence[np.ndarray]) -> tuple[Any, np.ndarray]:
    """The batch's waveforms right-padded to a common width (a multiple of 128 samples), on the CPU, and lengths."""
    import torch

    lengths = np.array([len(clip) for clip in clips])
    width = int(lengths.max()) if len(clips) else 0
    width = -(-width // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF
    waveform = torch.zeros(len(clips), width, dtype=torch.float32)
    for row, clip in enumerate(clips):
        waveform[row, : len(clip)] = torch.from_numpy(np.asarray(clip, dtype=np.float32))
    return waveform, lengths


def frame_mask(extractor: Any, lengths: np.ndarray, width: int) -> np.ndarray:
    """[b, frames]: the valid frames of waveforms of ``lengths`` samples padded to ``width`` (no STFT needed)."""
    frame_length, hop = extractor.frame_length, extractor.hop_length
    n_frames = (width + frame_length // 2 - (frame_length + 1)) // hop + 1  # what ``log_mel``'s unfold makes
    return _frame_mask(np.asarray(lengths), max(n_frames, 0), frame_length, hop)


def log_mel(extractor: Any, clips: Sequence[np.ndarray], device: Any) -> tuple[Any, Any]:
    """Features and frame mask of a batch, as ``Gemma4AudioFeatureExtractor`` makes them: ([b, T, mels], [b, T])."""
    waveform, lengths = pad_waveforms(clips)
    return log_mel_of_padded(extractor, waveform.to(device, non_blocking=True), lengths)


def log_mel_of_padded(extractor: Any, waveform: Any, lengths: np.ndarray) -> tuple[Any, Any]:
    """:func:`log_mel` of waveforms already padded by :func:`pad_waveforms`, on the waveforms' device."""
    import torch

    device = waveform.device
    if extractor.input_scale_factor != 1.0:
        waveform = waveform * extractor.input_scale_factor
    frame_length, hop = extractor.frame_length, extractor.hop_length
    waveform = torch.nn.functional.pad(waveform, (frame_length // 2, 0))
    frames = waveform.unfold(-1, frame_length + 1, hop)  # [b, T, frame_length + 1]
    if extractor.preemphasis > 0.0:
        p = extractor.preemphasis
        if extractor.preemphasis_htk_flavor:
            frames = torch.cat([frames[..., :1] * (1.0 - p), frames[..., 1:-1] - p * frames[..., :-2]], dim=-1)
        else:
            frames = frames[..., 1:] - p * frames[..., :-1]
    else:
        frames = frames[..., :-1]
    window = torch.as_tensor(extractor.window, dtype=torch.float32, device=device)
    magnitude = torch.fft.rfft(frames * window, n=extractor.fft_length, dim=-1).abs()
    filters = torch.as_tensor(extractor.mel_filters, dtype=torch.float64, device=device)
    mel = torch.log(magnitude.double() @ filters + float(extractor.mel_floor))
    if extractor.per_bin_mean is not None:
        mel = mel - torch.as_tensor(extractor.per_bin_mean, dtype=torch.float64, device=device)
    if extractor.per_bin_stddev is not None:
        mel = mel / torch.as_tensor(extractor.per_bin_stddev, dtype=torch.float64, device=device)
    mask = _frame_mask(np.asarray(lengths), mel.shape[1], frame_length, hop)
    mask_t = torch.from_numpy(mask).to(device)
    features = mel.float() * mask_t[..., None]
    return features, mask_t


def expand_audio_placeholder(processor: Any, prompt: str, counts: Sequence[int]) -> list[str]:
    """One prompt per clip with its audio placeholder expanded to ``<|audio>`` + N x ``<|audio|>`` + ``<audio|>``."""
    if prompt.count(processor.audio_token) != 1:
        raise ValueError("the prompt must hold exactly one audio placeholder")
    return [
        prompt.replace(processor.audio_token, f"{processor.boa_token}{processor.audio_token * n}{processor.eoa_token}")
        for n in counts
    ]


def modality_ids(processor: Any, ids: Any) -> Any:
    """``mm_token_type_ids`` as the processor makes them: 3 for audio placeholders (1 image, 2 video), else 0."""
    import torch

    types = torch.zeros_like(ids)
    types[ids == processor.audio_token_id] = 3
    for name, code in (("image_token_id", 1), ("video_token_id", 2)):
        token_id = getattr(processor, name, None)
        if token_id is not None:
            types[ids == token_id] = code
    return types


WAVEFORMS = "input_waveforms"
WAVEFORM_LENGTHS = "input_waveform_lengths"
"""Batch keys of a collator that leaves the log-mel features to the model's device (:func:`with_features`)."""


def with_features(extractor: Any, inputs: dict) -> dict:
    """``inputs`` with padded waveforms (on any device) replaced by their features and mask, computed there."""
    if WAVEFORMS not in inputs:
        return inputs
    inputs = dict(inputs)
    waveform = inputs.pop(WAVEFORMS)
    lengths = inputs.pop(WAVEFORM_LENGTHS).cpu().numpy()
    features, mask = log_mel_of_padded(extractor, waveform.float(), lengths)
    inputs["input_features"], inputs["input_features_mask"] = features, mask
    return inputs


def prepare_inputs_torch(processor: Any, clips: Sequence[np.ndarray], system: str, user: str, device: Any) -> dict:
    """``prepare_inputs`` (same keys and values as the processor's output), with the features made on ``device``."""
    extractor = processor.feature_extractor
    features, mask = log_mel(extractor, clips, device)
    counts = audio_token_counts(mask.cpu().numpy())
    texts = expand_audio_placeholder(processor, render_prompt(system, user), counts)
    tokenizer = processor.tokenizer
    encoded = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    ids = encoded["input_ids"]
    return {
        "input_ids": ids,
        "attention_mask": encoded["attention_mask"],
        "mm_token_type_ids": modality_ids(processor, ids),
        "input_features": features,
        "input_features_mask": mask,
    }
