"""``GemmaDecoder``: one loaded Gemma 4 audio model behind ovoz's :class:`ovoz.decoding.Decoder` interface.

It picks the engine per call (the static-cache CUDA-graph engine on CUDA, plain ``generate`` on the CPU or for
streaming), keeps one static engine per batch size, decides the fused kernels per run, serves a shared job queue
(the HTTP server), and puts adapters on and off the model (evaluation of several adapters on one base).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..decoding import Decoded, DecodeStats, JobSource, Prompt
from ..errors import ConfigError
from ..types import ENGINES as ALL_ENGINES
from ..types import MAX_AUDIO_TOKENS, SAMPLE_RATE
from .kernels import fused

logger = logging.getLogger(__name__)

ENGINES = tuple(name for name in ALL_ENGINES if name != "vllm")
"""ovoz's own engines (vLLM is :class:`ovoz.gemma.vllm_backend.VLLMDecoder`)."""
CPU_BATCH_SIZE = 8
"""Rows decoded together by plain ``generate`` (the CPU) when the options leave it open."""


class GemmaDecoder:
    """A loaded Gemma 4 audio model with its processor. Create it with :func:`ovoz.load`.

    ``engine``: ``"static"`` (static KV cache, CUDA graphs, continuous refill), ``"generate"`` (plain
    Hugging Face ``generate``) or ``"auto"`` (static on CUDA, generate on the CPU, where it is as fast).
    ``fused_kernels``: whether the static engine's runs use :mod:`ovoz.gemma.kernels.fused` (``None``: auto, see
    :func:`ovoz.gemma.kernels.fused.choose`).
    """

    def __init__(self, model: Any, processor: Any, info: Any, engine: str = "auto",
                 fused_kernels: bool | None = None) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"engine={engine!r}: choose one of {', '.join(ENGINES)}.")
        self.model = model
        self.processor = processor
        self.info = info
        self.engine = engine
        self.fused_kernels = fused_kernels
        self._static: dict[int, Any] = {}
        self._auto_batch: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"GemmaDecoder(base={self.info.base!r}, adapter={self.info.adapter!r}, device={self.info.device!r})"

    @property
    def device(self) -> Any:
        return self.model.device

    def uses_static_engine(self) -> bool:
        if self.engine == "auto":
            return self.model.device.type == "cuda"
        return self.engine == "static"

    def static_engine(self, slots: int, max_new_tokens: int) -> Any:
        """The static engine for this batch size, built once per size (its CUDA graphs are captured on first use)."""
        from .static_engine import StaticEngine

        engine = self._static.get(slots)
        if engine is None or engine.max_new_tokens < max_new_tokens:
            audio_tokens = getattr(self.processor, "audio_seq_length", MAX_AUDIO_TOKENS)
            engine = StaticEngine(self.model, self.processor, slots=slots, max_new_tokens=max_new_tokens,
                                  max_audio_tokens=audio_tokens)
            self._static[slots] = engine
        return engine

    def default_batch_size(self, max_new_tokens: int = 256) -> int:
        """Rows decoded together when the options leave it open: 8 with plain ``generate``; with the static engine
        as many as the GPU's free memory holds (:func:`ovoz.gemma.batch_size.auto_batch_size`), decided once."""
        if not self.uses_static_engine() or self.device.type != "cuda":
            return CPU_BATCH_SIZE
        if max_new_tokens not in self._auto_batch:
            import torch

            from ..types import SYSTEM_PROMPT, USER_PROMPT
            from .batch_size import auto_batch_size
            from .static_engine import PROMPT_TOKENS_MARGIN, _prompt_tokens

            free, _ = torch.cuda.mem_get_info(self.device)
            free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            config = self.model.config
            slots = auto_batch_size(
                free, config.get_text_config(),
                getattr(self.processor, "audio_seq_length", MAX_AUDIO_TOKENS),
                _prompt_tokens(self.processor.tokenizer, SYSTEM_PROMPT, USER_PROMPT) + PROMPT_TOKENS_MARGIN,
                max_new_tokens, audio_config=getattr(config, "audio_config", None),
            )
            logger.info("batch size %d (auto: %.1f GiB of GPU memory free)", slots, free / 2**30)
            self._auto_batch[max_new_tokens] = slots
        return self._auto_batch[max_new_tokens]

    # ------------------------------------------------------------------ the Decoder interface
    def decode(self, clips: Sequence[np.ndarray], max_new_tokens: Sequence[int], *, prompt: Prompt,
               batch_size: int, expected_audio_s: float = 0.0, stats: DecodeStats | None = None) -> list[Decoded]:
        """Greedy-decode clips of at most 30 s each, ``batch_size`` rows at a time; results in input order."""
        from .generate import generate

        caps = list(max_new_tokens)
        if len(caps) != len(clips):
            raise ValueError("max_new_tokens needs one value per clip")
        if not clips:
            return []
        if self.uses_static_engine():
            # Slots in powers of two (idle slots cost little): few engines, each with its KV cache and graphs.
            engine = self.static_engine(min(batch_size, 1 << (len(clips) - 1).bit_length()), max(caps))
            audio_s = max(expected_audio_s, sum(len(clip) for clip in clips) / SAMPLE_RATE)
            return engine.run(clips, max_new_tokens=caps, system=prompt.system, user=prompt.user, stats=stats,
                              fused_kernels=fused.choose(self.fused_kernels, self.device, audio_s))
        order = sorted(range(len(clips)), key=lambda i: -len(clips[i]))  # similar lengths share a batch
        results: list[Decoded | None] = [None] * len(clips)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            outputs = generate(self.model, self.processor, [clips[i] for i in batch],
                               max_new_tokens=[caps[i] for i in batch], system=prompt.system, user=prompt.user,
                               stats=stats)
            for index, output in zip(batch, outputs):
                results[index] = output
        return results  # type: ignore[return-value]

    def stream(self, clip: np.ndarray, max_new_tokens: int, *, prompt: Prompt, on_text: Callable[[str], None],
               stats: DecodeStats | None = None) -> Decoded:
        """Decode one clip with plain ``generate``, handing text to ``on_text`` as it is generated."""
        from .generate import generate

        return generate(self.model, self.processor, [clip], max_new_tokens=[max_new_tokens], system=prompt.system,
                        user=prompt.user, on_text=on_text, stats=stats)[0]

    def serve_jobs(self, source: JobSource, *, prompt: Prompt, batch_size: int, max_new_tokens: int,
                   stats: DecodeStats | None = None) -> None:
        """Decode jobs from ``source`` until it is closed and idle.

        On the static engine a finished row takes the next job at once (continuous refill) and a cancelled job frees
        its row at the next step; with plain ``generate``, jobs are decoded ``batch_size`` at a time. A job whose
        decoding fails gets the error; the others go on."""
        if self.uses_static_engine():
            self.static_engine(batch_size, max_new_tokens).serve(source, system=prompt.system, user=prompt.user,
                                                                  stats=stats, fused_kernels=self.fused_kernels)
            return
        while True:
            jobs = [job for job in source.take(batch_size, wait=True) if not job.cancelled()]
            if not jobs:
                if source.closed:
                    return
                continue
            try:
                outputs = self.decode([job.clip for job in jobs],
                                      [min(job.max_new_tokens, max_new_tokens) for job in jobs],
                                      prompt=prompt, batch_size=batch_size, stats=stats)
            except Exception as error:  # noqa: BLE001 - the jobs get it; the serving thread goes on
                for job in jobs:
                    job.done(error)
                continue
            for job, output in zip(jobs, outputs):
                job.done(output)

    def check_adapter(self, adapter: str | Path, *, local_files_only: bool = False) -> None:
        """Raise what :meth:`with_adapter` would for ``adapter`` (not found, malformed, corrupt, made for another
        base), from its files alone: nothing is loaded. Evaluation checks every adapter so before the first run."""
        from .adapter import check_fits, inspect_adapter
        from .hub import resolve_folder

        folder = resolve_folder(adapter, kind="adapter", local_files_only=local_files_only)
        if self.model is not None:
            check_fits(self.model, folder, inspect_adapter(folder))

    @contextlib.contextmanager
    def with_adapter(self, adapter: str | Path, *, merge: bool = False,
                     local_files_only: bool = False) -> Iterator["GemmaDecoder"]:
        """This model with a LoRA adapter put on for the duration of the block, then taken off again.

        ``merge`` folds the adapter into the weights (faster decoding); this decoder is then spent (its ``model`` is
        set to None), so use it only for the last adapter of a run. Raises :class:`ConfigError` when this decoder
        already carries an adapter, :class:`ovoz.AdapterError` when the adapter is malformed or does not fit."""
        from .adapter import apply_adapter, has_lora
        from .hub import resolve_folder

        if self.model is None:
            raise ConfigError("this base model was spent by merging an adapter into it; load it again.")
        if self.info.adapter is not None or has_lora(self.model):
            raise ConfigError("the base model already carries an adapter; load the base with adapter=None.")
        folder = resolve_folder(adapter, kind="adapter", local_files_only=local_files_only)
        peft_model, adapter_info = apply_adapter(self.model, folder)
        logger.info("adapter %s: %s", adapter, adapter_info.summary())
        merged = merge and not self.info.quantization
        model = peft_model.merge_and_unload() if merged else peft_model
        model.eval()
        info = dataclasses.replace(self.info, adapter=str(adapter), adapter_summary=adapter_info.summary(),
                                   adapted_parts=adapter_info.parts, merged=merged)
        try:
            yield GemmaDecoder(model, self.processor, info, engine=self.engine, fused_kernels=self.fused_kernels)
        finally:
            self._static.clear()  # engines hold the modules they were built on
            if merged:
                self.model = None
            else:
                self.model = peft_model.unload()  # removes the LoRA layers; the base weights were never touched
                if has_lora(self.model):
                    raise RuntimeError("LoRA layers remained in the base model after unloading an adapter")
