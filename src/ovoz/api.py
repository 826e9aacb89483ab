"""``ovoz.load``: a backend's decoder for a base model and adapter, wrapped in a :class:`ovoz.Transcriber`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .types import DEFAULT_ADAPTER, DEFAULT_BASE

if TYPE_CHECKING:
    from .transcriber import Transcriber


def load(base: str | Path = DEFAULT_BASE, adapter: str | Path | None = DEFAULT_ADAPTER, **kwargs: Any) -> "Transcriber":
    """Load a Gemma 4 audio model and (optionally) a LoRA adapter, ready to transcribe.

    ``base``/``adapter``: hub ids or local folders; ``adapter=None`` runs the base alone. The keyword arguments
    (``device``, ``dtype``, ``quantization``, ``local_files_only``, ``merge_adapter``, ``revision``, ``engine``,
    ``fused_kernels``, ``vllm_options``) are those of :func:`ovoz.gemma.loading.load_decoder`; ``engine="vllm"`` decodes
    with vLLM (docs/vllm.md).
    """
    from .gemma.loading import load_decoder
    from .transcriber import Transcriber

    return Transcriber(load_decoder(base, adapter, **kwargs))
