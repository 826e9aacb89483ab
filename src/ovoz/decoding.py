"""The interface between ovoz's pipeline and a model backend: clips in; tokens, text, log-probabilities and timings out.

Everything above this line (long-audio pipeline, runner, evaluation, server) talks to a :class:`Decoder`; only a
backend (``ovoz.gemma.decoder.GemmaDecoder``, ``ovoz.gemma.vllm_backend.VLLMDecoder``) knows how a model turns 16 kHz clips of at most 30 s into text.
Pure types: importing this module loads neither torch nor transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Prompt:
    """The text around the audio in the trained prompt: a system turn, then the audio and the user's instruction."""

    system: str
    user: str


@dataclass(frozen=True)
class Decoded:
    """One clip's decoded output."""

    text: str
    token_ids: tuple[int, ...]
    """Generated ids, without the stop token."""
    avg_logprob: float | None
    """Mean log-probability of the generated tokens (stop token included)."""
    stopped: bool
    """True when generation ended at a stop token; False when it hit the token cap."""


@dataclass
class DecodeStats:
    """Time spent and work done, accumulated over calls (seconds and counts)."""

    features_s: float = 0.0
    generate_s: float = 0.0
    prefill_s: float = 0.0
    n_clips: int = 0
    n_new_tokens: int = 0
    n_decode_steps: int = 0


class ClipJob(Protocol):
    """One clip handed to :meth:`Decoder.serve_jobs` by a :class:`JobSource` (the server's requests make them)."""

    clip: "np.ndarray"
    """16 kHz mono float32, at most 30 s."""
    max_new_tokens: int

    def done(self, result: Decoded | BaseException) -> None:
        """Called once, from the decoding thread, with the clip's result or the error that stopped it."""

    def cancelled(self) -> bool:
        """True once nobody waits for the result: the decoder drops the job and frees its slot."""


class JobSource(Protocol):
    """Where :meth:`Decoder.serve_jobs` takes its work from (a queue shared by concurrent requests)."""

    def take(self, n: int, wait: bool) -> list[ClipJob]:
        """Up to ``n`` jobs; with ``wait`` block until at least one is there or the source is closed."""

    @property
    def closed(self) -> bool:
        """No job will come any more: ``serve_jobs`` returns once the jobs it holds are done."""


@runtime_checkable
class Decoder(Protocol):
    """A loaded speech model that decodes clips of at most 30 s (``ovoz.gemma.GemmaDecoder``)."""

    info: Any
    """What was loaded (base, adapter, device, dtype, quantization): a dataclass with ``to_dict()``."""

    def decode(self, clips: Sequence["np.ndarray"], max_new_tokens: Sequence[int], *, prompt: Prompt,
               batch_size: int, expected_audio_s: float = 0.0, stats: DecodeStats | None = None) -> list[Decoded]:
        """Greedy-decode every clip (caps per clip), ``batch_size`` rows at a time; results in input order."""

    def stream(self, clip: "np.ndarray", max_new_tokens: int, *, prompt: Prompt, on_text: Callable[[str], None],
               stats: DecodeStats | None = None) -> Decoded:
        """Decode one clip, handing text to ``on_text`` as it is generated."""

    def serve_jobs(self, source: JobSource, *, prompt: Prompt, batch_size: int, max_new_tokens: int) -> None:
        """Decode jobs from ``source`` until it is closed and idle; finished rows take new jobs as they come."""

    def with_adapter(self, adapter: Any, *, merge: bool = False,
                     local_files_only: bool = False) -> ContextManager["Decoder"]:
        """This decoder's model with a LoRA adapter put on for a block, then taken off again."""
