"""The static engine's per-slot state: its KV cache object and where its clips come from (a list or a job source)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..decoding import Decoded, JobSource


class SlotCache:
    """Duck-typed transformers ``Cache``: keys/values of the cache-owning layers in per-slot buffers.

    Prefill mode returns the fresh keys/values (a new clip attends only to itself) and copies them into
    the slots; decode mode scatters the one new position per slot and returns the whole buffer.
    """

    is_compileable = False

    def __init__(self, keys: dict[int, Any], values: dict[int, Any]) -> None:
        self.keys = keys
        self.values = values
        self.mode = "decode"
        self.width = 0  # decode: attend over positions [0, width)
        self.slot_index: Any = None  # prefill: [b] slots being filled
        self.write_index: Any = None  # prefill: [b, T] positions (garbage column for padding); decode: [S]

    def update(self, key_states: Any, value_states: Any, layer_idx: int, *args: Any, **kwargs: Any):

        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if self.mode == "prefill":
            # [b, kvh, T, hd] -> buffer[slot, :, position]
            slots = self.slot_index[:, None].expand_as(self.write_index)
            keys[slots, :, self.write_index] = key_states.transpose(1, 2).to(keys.dtype)
            values[slots, :, self.write_index] = value_states.transpose(1, 2).to(values.dtype)
            return key_states, value_states
        index = self.write_index.view(-1, 1, 1, 1).expand(-1, keys.shape[1], 1, keys.shape[3])
        keys.scatter_(2, index, key_states.to(keys.dtype))
        values.scatter_(2, index, value_states.to(values.dtype))
        return keys[:, :, : self.width], values[:, :, : self.width]

    def get_seq_length(self, layer_idx: int = 0) -> int:  # only used when positions are not given
        return 0

    def __len__(self) -> int:
        return len(self.keys)


KV_BUCKET = 128
"""Decode attends over the cache up to the longest live row, rounded up to this many positions (one graph each)."""



@dataclass
class _Request:
    clip: np.ndarray
    cap: int
    done: Callable[[Decoded | BaseException], None]
    cancelled: Callable[[], bool] = lambda: False


class _ListFeed:
    """A fixed list of clips: results land in ``results`` by position."""

    def __init__(self, clips: Sequence[np.ndarray], caps: Sequence[int],
                 on_done: Callable[[int, Decoded], None] | None) -> None:
        self.results: list[Decoded | None] = [None] * len(clips)

        def finisher(index: int) -> Callable[[Decoded | BaseException], None]:
            def done(result: Decoded | BaseException) -> None:
                if isinstance(result, BaseException):
                    raise result
                self.results[index] = result
                if on_done is not None:
                    on_done(index, result)
            return done

        self.queue = deque(_Request(clip, cap, finisher(i)) for i, (clip, cap) in enumerate(zip(clips, caps)))

    def take(self, n: int, wait: bool) -> list[_Request]:
        return [self.queue.popleft() for _ in range(min(n, len(self.queue)))]

    def pending(self) -> int:
        return len(self.queue)

    @property
    def closed(self) -> bool:
        return not self.queue


class _SourceFeed:
    """Jobs from a :class:`ovoz.decoding.JobSource` (the server's shared queue)."""

    def __init__(self, source: JobSource, max_new_tokens: int) -> None:
        self.source = source
        self.max_new_tokens = max_new_tokens

    def take(self, n: int, wait: bool) -> list[_Request]:
        return [_Request(job.clip, min(int(job.max_new_tokens), self.max_new_tokens), job.done, job.cancelled)
                for job in self.source.take(n, wait)]

    def pending(self) -> int:
        return int(getattr(self.source, "pending", lambda: 1)())

    @property
    def closed(self) -> bool:
        return self.source.closed
