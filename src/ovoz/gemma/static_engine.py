"""A batched Gemma 4 decoding engine: static KV cache, CUDA-graph decode steps, continuous refill.

Why: the plain ``generate`` path is launch-bound (tens of ms a decode step whatever the batch). Here:

* every slot of a fixed batch owns a row of a preallocated KV cache; slots have their own lengths, so a
  finished row is refilled with the next waiting clip while the others keep decoding (continuous refill);
* prefill runs the real Gemma 4 forward (audio tower + language model) over a group of new clips, with our
  cache object collecting the keys/values of the layers that own a cache;
* one decode step (embeddings, 42 layers, logits, argmax, log-probability) reads its inputs from fixed
  buffers and is captured once per batch size in a CUDA graph, then replayed: a few launches per step
  instead of thousands.

The model code is transformers' own; we only pass it ready-made attention masks (a dict per layer type),
explicit positions and a cache object whose ``update`` writes into our buffers. On the CPU it runs the same
code without graphs (used by the tests to prove token-for-token agreement with ``generate``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..decoding import Decoded, DecodeStats, JobSource
from ..types import MAX_AUDIO_TOKENS, SAMPLE_RATE, SYSTEM_PROMPT, USER_PROMPT
from .generate import prepare_inputs, stop_token_ids
from .kernels import fused
from .kernels.attention import packed_attention
from .kernels.kv_shared import KVSharedLayersOnLastPositions
from .prompt import render_prompt
from .slots import KV_BUCKET, SlotCache, _ListFeed, _Request, _SourceFeed  # noqa: F401 (_Request: benchmarks)

logger = logging.getLogger(__name__)

PROMPT_TOKENS_MARGIN = 32
"""Room for a longer system/user prompt than the trained one, in tokens."""


def _prompt_tokens(tokenizer: Any, system: str, user: str) -> int:
    """Text tokens of the prompt, the audio placeholder and its two brackets included."""
    return len(tokenizer(render_prompt(system, user), add_special_tokens=False)["input_ids"]) + 2


class StaticEngine:
    """Continuous-batching greedy decoder for one loaded Gemma 4 audio model.

    ``slots``: rows decoded together (the batch size). ``max_new_tokens``: cap per clip (sizes the cache).
    ``use_cuda_graphs``: capture the decode step (CUDA only; default on CUDA). ``refill_fraction``: free slots
    are refilled together once this share of them is free (or the queue is short). ``fused_kernels``: run
    Gemma 4's norms, rotary embedding and MLP activation as compiled kernels (:mod:`ovoz.gemma.kernels.fused`); ``None`` (auto)
    decides per run with :func:`ovoz.gemma.kernels.fused.choose` (CUDA with Triton; already compiled, or hours of audio).
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        slots: int = 8,
        max_new_tokens: int = 256,
        max_audio_tokens: int = MAX_AUDIO_TOKENS,
        use_cuda_graphs: bool | None = None,
        refill_fraction: float = 0.25,
        fused_kernels: bool | None = None,
    ) -> None:
        import torch

        # A PEFT-wrapped model (an unmerged adapter, e.g. on a 4-bit base) keeps its LoRA layers inside the
        # base modules, so calling the base's modules directly still applies the adapter.
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.model = base
        self.processor = processor
        self.device = base.device
        self.slots = slots
        self.max_new_tokens = max_new_tokens
        # A prefill call costs several decode steps whatever its size: refill once this many slots are free.
        self.refill_at = max(1, int(slots * refill_fraction))
        self.core = base.model  # Gemma4Model
        self.text = self.core.language_model
        # transformers renamed the cache argument (past_key_values -> cache) after 5.17.
        import inspect

        self._cache_kw = "cache" if "cache" in inspect.signature(self.text.forward).parameters else "past_key_values"
        config = self.text.config
        self.config = config
        self.softcap = config.final_logit_softcapping
        self.sliding_window = config.sliding_window
        self.dtype = self.text.embed_tokens.weight.dtype
        if self.dtype not in (torch.float32, torch.bfloat16, torch.float16):  # quantized embeddings are not
            self.dtype = torch.bfloat16
        self.prompt_room = _prompt_tokens(processor.tokenizer, SYSTEM_PROMPT, USER_PROMPT) + PROMPT_TOKENS_MARGIN
        self.capacity = max_audio_tokens + self.prompt_room + max_new_tokens + 1
        self.garbage = self.capacity  # one extra column takes padding writes
        self.use_cuda_graphs = (self.device.type == "cuda") if use_cuda_graphs is None else use_cuda_graphs
        self.fused_kernels = fused_kernels
        self._fused_now = False  # the current run's choice (its decode graphs are kept apart)
        self.stops = stop_token_ids(processor.tokenizer)
        self._bool_masks = config._attn_implementation != "eager"
        owners = [
            layer.self_attn for layer in self.text.layers if not layer.self_attn.is_kv_shared_layer
        ]
        keys, values = {}, {}
        for attention in owners:
            heads = attention.k_proj.out_features // attention.head_dim
            shape = (slots, heads, self.capacity + 1, attention.head_dim)
            keys[attention.layer_idx] = torch.zeros(shape, dtype=self.dtype, device=self.device)
            values[attention.layer_idx] = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.cache = SlotCache(keys, values)
        self._prefill_cut = KVSharedLayersOnLastPositions(self.text, keep=1)
        # Decode-step buffers (also the CUDA graph's inputs and outputs).
        self.tokens = torch.zeros(slots, dtype=torch.long, device=self.device)
        self.positions = torch.zeros(slots, dtype=torch.long, device=self.device)
        self.next_tokens = torch.zeros(slots, dtype=torch.long, device=self.device)
        self.next_logprobs = torch.zeros(slots, dtype=torch.float32, device=self.device)
        self.key_positions = torch.arange(self.capacity + 1, device=self.device)
        # A generated placeholder id (audio/image/video) is embedded as padding, as Gemma4Model does.
        top = base.config
        self.placeholder_ids = torch.tensor(
            [i for i in (top.audio_token_id, top.image_token_id, top.video_token_id) if i is not None],
            device=self.device,
        )
        self._graphs: dict[tuple[int, bool], Any] = {}  # (attention width, fused kernels) -> captured step
        self._pool: Any = None
        self.features_s = 0.0  # processor time (log-mel features + tokenization), accumulated

    # ------------------------------------------------------------------ masks
    def _mask(self, query_positions: Any, key_positions: Any, key_valid: Any, sliding: bool) -> Any:
        """[b, 1, q, k] mask: causal (key <= query), inside the window for sliding layers, valid keys only."""
        import torch

        q = query_positions[:, None, :, None]
        k = key_positions[:, None, None, :] if key_positions.dim() == 2 else key_positions[None, None, None, :]
        allowed = (k <= q) & key_valid[:, None, None, :]
        if sliding:
            allowed &= k > q - self.sliding_window
        if self._bool_masks:
            return allowed
        return torch.where(allowed, 0.0, torch.finfo(self.dtype).min).to(self.dtype)

    def _masks(self, query_positions: Any, key_positions: Any, key_valid: Any) -> dict[str, Any]:
        return {
            "full_attention": self._mask(query_positions, key_positions, key_valid, sliding=False),
            "sliding_attention": self._mask(query_positions, key_positions, key_valid, sliding=True),
        }

    def _logits_to_token(self, hidden: Any) -> tuple[Any, Any]:
        import torch

        logits = self.model.lm_head(hidden).float()
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        logprobs = logits.log_softmax(-1)
        token = logprobs.argmax(-1)
        return token, logprobs.gather(-1, token[:, None]).squeeze(-1)

    # ------------------------------------------------------------------ prefill
    def _prefill(self, requests: list[_Request], slot_ids: list[int], system: str, user: str) -> tuple[Any, Any, Any]:
        """Run the prompts of ``requests`` into ``slot_ids``; return (first tokens, their logprobs, lengths)."""
        import torch

        started = time.perf_counter()
        inputs = prepare_inputs(self.processor, [r.clip for r in requests], system, user, device=self.device)
        self.features_s += time.perf_counter() - started
        ids = inputs["input_ids"].to(self.device)
        attention = inputs["attention_mask"].to(self.device).bool()
        lengths = attention.sum(1)
        width = ids.shape[1]
        pad = width - lengths  # left padding
        columns = torch.arange(width, device=self.device)[None, :]
        positions = (columns - pad[:, None]).clamp(min=0)
        valid_keys = attention
        # Padding queries attend to the first real token only, so no row of the mask is empty.
        masks = self._masks(torch.where(attention, positions, 0), positions, valid_keys)
        self.cache.mode = "prefill"
        self.cache.slot_index = torch.tensor(slot_ids, device=self.device)
        self.cache.write_index = torch.where(attention, positions, torch.full_like(positions, self.garbage))
        try:
            with self._prefill_cut:
                output = self.core(
                    input_ids=ids,
                    attention_mask=masks,
                    position_ids=positions,
                    use_cache=True,
                    **{self._cache_kw: self.cache},
                    input_features=inputs["input_features"].to(self.device, self.dtype),
                    input_features_mask=inputs["input_features_mask"].to(self.device),
                    mm_token_type_ids=inputs.get("mm_token_type_ids").to(self.device)
                    if inputs.get("mm_token_type_ids") is not None else None,
                    return_dict=True,
                )
        finally:
            self.cache.mode = "decode"
        hidden = output.last_hidden_state[:, -1]
        token, logprob = self._logits_to_token(hidden)
        return token, logprob, lengths

    # ------------------------------------------------------------------ decode
    def _step(self, width: int) -> None:
        """One decode step over all slots attending to cache positions below ``width``; it reads and writes only
        the fixed buffers (graph-capturable)."""
        key_positions = self.key_positions[:width]
        valid = key_positions[None, :] <= self.positions[:, None]
        masks = self._masks(self.positions[:, None], key_positions, valid)
        self.cache.write_index = self.positions
        self.cache.width = width
        import torch

        tokens = torch.where(torch.isin(self.tokens, self.placeholder_ids), self.config.pad_token_id or 0, self.tokens)
        output = self.text(
            input_ids=tokens[:, None],
            attention_mask=masks,
            position_ids=self.positions[:, None],
            use_cache=True,
            **{self._cache_kw: self.cache},
            return_dict=True,
        )
        token, logprob = self._logits_to_token(output.last_hidden_state[:, -1])
        self.next_tokens.copy_(token)
        self.next_logprobs.copy_(logprob)

    def _decode(self, longest: int) -> None:
        """One decode step; ``longest`` is the highest position any live row writes now."""
        import torch

        width = min(self.capacity, -(-(longest + 1) // KV_BUCKET) * KV_BUCKET)
        if not self.use_cuda_graphs:
            self._step(width)
            return
        key = (width, self._fused_now)
        graph = self._graphs.get(key)
        if graph is None:
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            # Warm-up steps write each live row's current key/value at its current position, exactly what the
            # replay below writes again, so running them on live state is harmless.
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm up kernels and allocator outside the graph
                    self._step(width)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                self._step(width)
            self._pool = graph.pool()
            self._graphs[key] = graph
            logger.debug("captured the decode step for %d slots over %d positions", self.slots, width)
        graph.replay()

    # ------------------------------------------------------------------ driver
    def run(
        self,
        clips: Sequence[np.ndarray],
        *,
        max_new_tokens: int | Sequence[int] = 256,
        system: str,
        user: str,
        stats: DecodeStats | None = None,
        on_done: Callable[[int, Decoded], None] | None = None,
        fused_kernels: bool | None = None,
    ) -> list[Decoded]:
        """Greedy-decode every clip; finished rows are refilled at once from the queue. ``fused_kernels``
        overrides the engine's setting for this run."""
        caps = [max_new_tokens] * len(clips) if isinstance(max_new_tokens, int) else list(max_new_tokens)
        if any(cap > self.max_new_tokens for cap in caps):
            raise ValueError(f"a cap exceeds the engine's max_new_tokens={self.max_new_tokens}")
        feed = _ListFeed(clips, caps, on_done)
        audio_s = sum(len(clip) for clip in clips) / SAMPLE_RATE
        setting = self.fused_kernels if fused_kernels is None else fused_kernels
        self._drive(feed, system, user, stats, fused.choose(setting, self.device, audio_s))
        return list(feed.results)  # type: ignore[arg-type]

    def serve(self, source: JobSource, *, system: str, user: str, stats: DecodeStats | None = None,
              fused_kernels: bool | None = None) -> None:
        """Decode jobs from ``source`` until it is closed and every slot is idle: a finished row takes the next job
        at once, and a cancelled job's row is freed at the next step. Each job gets its result (or error)."""
        setting = self.fused_kernels if fused_kernels is None else fused_kernels
        self._drive(_SourceFeed(source, self.max_new_tokens), system, user, stats,
                    fused.choose(setting, self.device, fused.AUTO_MIN_AUDIO_S))

    def _drive(self, feed: Any, system: str, user: str, stats: DecodeStats | None, use_fused: bool) -> None:
        import torch

        if _prompt_tokens(self.processor.tokenizer, system, user) > self.prompt_room:
            raise ValueError(
                f"the system and user prompts take more than the {self.prompt_room} tokens this engine holds; "
                "shorten them or build the engine for them"
            )
        owner: list[_Request | None] = [None] * self.slots
        generated: list[list[int]] = [[] for _ in range(self.slots)]
        logprobs: list[list[float]] = [[] for _ in range(self.slots)]
        # Each slot's next write position, mirrored on the host; idle slots write into the garbage column.
        position = [self.garbage] * self.slots
        self.positions.fill_(self.garbage)
        self.tokens.fill_(self.config.pad_token_id or 0)
        started = time.perf_counter()
        features_before = self.features_s
        prefill_s = 0.0
        n_steps = n_clips = n_tokens = 0
        stop_set = set(self.stops)

        def release(slot: int) -> None:
            owner[slot] = None
            generated[slot], logprobs[slot] = [], []
            position[slot] = self.garbage

        def finish(slot: int, stopped: bool) -> None:
            nonlocal n_clips, n_tokens
            request = owner[slot]
            ids = generated[slot]
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=True).strip()
            values = logprobs[slot]
            n_clips += 1
            n_tokens += len(ids)
            release(slot)
            request.done(Decoded(text, tuple(ids), float(np.mean(values)) if values else None, stopped))

        self._fused_now = use_fused
        kernels = fused.FusedKernels(self.model) if use_fused else contextlib.nullcontext()
        triton_attention = use_fused and getattr(kernels, "decode_attention", None) is not None
        with torch.inference_mode(), packed_attention(self.text.config, triton=triton_attention), kernels:
            while True:
                for slot, request in enumerate(owner):  # a client gone: free its row
                    if request is not None and request.cancelled():
                        release(slot)
                free = [s for s in range(self.slots) if owner[s] is None]
                busy = self.slots - len(free)
                if free and (len(free) >= self.refill_at or busy == 0 or feed.pending() <= len(free)):
                    take = feed.take(len(free), wait=busy == 0)
                    take = [r for r in take if not r.cancelled()]
                    if take:
                        t0 = time.perf_counter()
                        slots = free[: len(take)]
                        try:
                            first, first_logprob, lengths = self._prefill(take, slots, system, user)
                        except Exception as error:
                            if isinstance(feed, _ListFeed):
                                raise
                            for request in take:  # a failed prefill fails its jobs, not the server
                                request.done(error)
                            continue
                        for slot, request, token, logprob, length in zip(
                            slots, take, first.tolist(), first_logprob.tolist(), lengths.tolist()
                        ):
                            owner[slot] = request
                            logprobs[slot].append(logprob)
                            if token in stop_set or request.cap == 0:
                                finish(slot, stopped=token in stop_set)
                                continue
                            generated[slot].append(token)
                            if len(generated[slot]) >= request.cap:
                                finish(slot, stopped=False)
                                continue
                            self.tokens[slot] = token
                            position[slot] = length
                        self.positions.copy_(torch.tensor(position))
                        prefill_s += time.perf_counter() - t0
                        continue  # refill again if prefill finished rows at once
                    if busy == 0:
                        if feed.closed:
                            break
                        continue
                if not any(o is not None for o in owner):
                    continue
                self._decode(max(p for p, o in zip(position, owner) if o is not None))
                n_steps += 1
                next_tokens = self.next_tokens.tolist()  # one small device->host copy per step
                next_logprobs = self.next_logprobs.tolist()
                for slot in range(self.slots):
                    request = owner[slot]
                    if request is None:
                        continue
                    token = next_tokens[slot]
                    logprobs[slot].append(next_logprobs[slot])
                    if token in stop_set:
                        finish(slot, stopped=True)
                    elif len(generated[slot]) + 1 >= request.cap:
                        generated[slot].append(token)
                        finish(slot, stopped=False)
                    else:
                        generated[slot].append(token)
                self.tokens.copy_(self.next_tokens)
                position = [p + 1 if o is not None else self.garbage for p, o in zip(position, owner)]
                self.positions.copy_(torch.tensor(position))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if stats is not None:
            total = time.perf_counter() - started
            features = self.features_s - features_before
            stats.features_s += features
            stats.generate_s += total - features
            stats.n_clips += n_clips
            stats.n_new_tokens += n_tokens
            stats.prefill_s += prefill_s - features
            stats.n_decode_steps += n_steps
