"""Training examples streamed from any corpus ovoz reads: decoded, resampled, length-checked, counted.

Rows come from :func:`ovoz.data.open_dataset` (JSONL, Common Voice, FLEURS, local HF datasets), lazily: only the
shuffle buffer's rows (paths and text, or encoded bytes) are held in memory, never the corpus' audio. Each row
is decoded to 16 kHz mono float32 when it is used; clips over ``max_clip_s`` are dropped or split, examples
over the token budget are dropped, and every dropped or broken row is logged with its id and counted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AudioError, ConfigError
from ..types import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

    from ..data import ReadReport
    from .config import TrainConfig

logger = logging.getLogger(__name__)

SPLIT_SEARCH_S = 2.0
"""When splitting a long clip, look this far either side of an even cut for the quietest 20 ms."""
MAX_LISTED_REJECTS = 1000
"""Rejected rows listed one by one in the data report (all are counted)."""


@dataclass
class DataStats:
    """What happened to the rows of a corpus while examples were built (one pass)."""

    n_rows: int = 0
    """Rows the reader yielded (bad manifest rows are counted by the reader's report, not here)."""
    n_examples: int = 0
    """Examples produced (a split clip counts once per piece)."""
    n_broken_audio: int = 0
    n_too_long_dropped: int = 0
    n_too_long_split: int = 0
    n_over_token_budget: int = 0
    n_empty_text: int = 0
    audio_s: float = 0.0
    """Seconds of audio in the examples produced."""
    rejects: list[dict[str, Any]] = field(default_factory=list)
    n_bad_rows: int = 0
    """Manifest rows the reader skipped in this pass (missing file, empty text, wrong type, unreadable line)."""
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    """The reader's ``RowError`` of each, as a dict (the first ``MAX_LISTED_REJECTS``)."""

    def bad_row(self, error: dict[str, Any]) -> None:
        """Count a row the reader skipped (the reader has logged it already)."""
        self.n_bad_rows += 1
        if len(self.bad_rows) < MAX_LISTED_REJECTS:
            self.bad_rows.append(error)

    def reject(self, row_id: str, reason: str, counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.rejects) < MAX_LISTED_REJECTS:
            self.rejects.append({"id": row_id, "reason": reason})
        logger.warning("example %s dropped: %s", row_id, reason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.n_examples} examples ({self.audio_s / 3600:.2f} h) from {self.n_rows} rows; dropped: "
            f"{self.n_broken_audio} broken audio, {self.n_too_long_dropped} too long, "
            f"{self.n_over_token_budget} over the token budget, {self.n_empty_text} empty after normalization; "
            f"{self.n_too_long_split} long clips split"
        )


def open_rows(config: TrainConfig, *, eval: bool = False, report: ReadReport | None = None) -> Iterator[Any]:
    """Stream the rows (``Utterance``) of the training or dev corpus, as the config describes them."""
    from ..data import open_dataset

    spec = config.eval_data if eval else config.data
    if spec is None:
        raise ConfigError("no corpus given: set --data (and --eval-data for evaluation).")
    return open_dataset(
        spec,
        split=config.eval_split if eval else config.split,
        text_column=config.text_column,
        limit=config.eval_limit if eval else None,
        format=config.data_format,
        require_text=True,
        on_error=config.on_bad_row,
        report=report,
    )


def count_rows(config: TrainConfig, report: ReadReport) -> int:
    """One pass over the training corpus' rows (no audio decoding): bad rows are reported here, row by row."""
    n_rows = 0
    for _ in open_rows(config, report=report):
        n_rows += 1
    return n_rows


class TokenBudget:
    """Token length of an example without running the processor: prompt + audio placeholders + answer."""

    def __init__(self, processor: Any, system: str, user: str) -> None:
        from ..gemma.prompt import AUDIO, render_prompt

        tokenizer = processor.tokenizer
        prompt_text = render_prompt(system, user).replace(AUDIO, "")
        # +2: the processor wraps the audio placeholders in <|audio> ... <audio|>.
        self.n_prompt = len(tokenizer(prompt_text, add_special_tokens=False).input_ids) + 2
        self.processor = processor
        self.tokenizer = tokenizer

    def n_audio_tokens(self, n_samples: int) -> int:
        exact = getattr(self.processor, "_compute_audio_num_tokens", None)
        if exact is not None:
            import numpy as np

            return int(exact(np.empty(n_samples, dtype=np.float32), SAMPLE_RATE))
        return math.ceil(n_samples * 1000 / SAMPLE_RATE / 40)  # 25 tokens per second

    def length(self, n_samples: int, text: str) -> int:
        n_answer = len(self.tokenizer(text, add_special_tokens=False).input_ids) + 1  # + <turn|>
        return self.n_prompt + self.n_audio_tokens(n_samples) + n_answer


def split_long_clip(samples: np.ndarray, text: str, max_samples: int) -> list[tuple[np.ndarray, str]]:
    """Cut a clip into the fewest pieces of at most ``max_samples``, at the quietest 20 ms near even cuts.

    The transcript has no timestamps, so its words are shared out in proportion to each piece's duration:
    an approximation that puts a word or two on the wrong side of a cut. Pieces left without words are dropped.
    """
    import numpy as np

    n_pieces = math.ceil(len(samples) / max_samples)
    frame = SAMPLE_RATE // 50
    search = int(SPLIT_SEARCH_S * SAMPLE_RATE)
    cuts = [0]
    for piece in range(1, n_pieces):
        target = round(len(samples) * piece / n_pieces)
        low = max(cuts[-1] + 1, target - search, len(samples) - (n_pieces - piece) * max_samples)
        high = min(target + search, cuts[-1] + max_samples, len(samples) - 1)
        cut = target
        if high - low > frame:
            window = samples[low:high]
            n_frames = len(window) // frame
            energy = (window[: n_frames * frame].reshape(n_frames, frame) ** 2).mean(axis=1)
            cut = low + int(np.argmin(energy)) * frame + frame // 2
        cuts.append(min(max(cut, low), high))
    cuts.append(len(samples))
    words = text.split()
    pieces = []
    taken = 0
    for start, end in zip(cuts, cuts[1:]):
        upto = round(len(words) * end / len(samples))
        chunk = " ".join(words[taken:upto])
        taken = upto
        if chunk and end - start <= max_samples:
            pieces.append((samples[start:end], chunk))
    return pieces


class ExampleBuilder:
    """Turns one row into zero or more training examples ``{"id", "audio", "text"}`` and counts what it drops."""

    def __init__(self, config: TrainConfig, processor: Any, stats: DataStats | None = None) -> None:
        self.config = config
        self.stats = stats if stats is not None else DataStats()
        self.budget = TokenBudget(processor, config.system_prompt, config.user_prompt)
        self.max_samples = int(config.max_clip_s * SAMPLE_RATE)
        self.normalize: Callable[[str], str] | None = None
        if config.normalize_text is not None:
            from ..text import get_normalizer

            self.normalize = get_normalizer(config.normalize_text)

    def __call__(self, row_id: str, audio_source: Any, text: str, *, count: bool = True) -> list[dict[str, Any]]:
        """``count=False``: the rows and drops go uncounted (a later pass over rows already counted)."""
        from ..audio import load_audio

        stats = self.stats if count else DataStats()
        stats.n_rows += 1
        if self.normalize is not None:
            text = self.normalize(text).strip()
        if not text:
            stats.reject(row_id, "empty transcript after normalization", "n_empty_text")
            return []
        try:
            samples = load_audio(audio_source)
        except AudioError as error:
            stats.reject(row_id, f"audio cannot be read ({error})", "n_broken_audio")
            return []
        pieces = [(samples, text)]
        if len(samples) > self.max_samples:
            seconds = len(samples) / SAMPLE_RATE
            if self.config.long_clips == "drop":
                stats.reject(row_id, f"{seconds:.1f} s is over max_clip_s={self.config.max_clip_s:g}",
                             "n_too_long_dropped")
                return []
            pieces = split_long_clip(samples, text, self.max_samples)
            stats.n_too_long_split += 1
            logger.info("example %s: %.1f s split into %d pieces", row_id, seconds, len(pieces))
        examples = []
        for index, (piece, piece_text) in enumerate(pieces):
            piece_id = row_id if len(pieces) == 1 else f"{row_id}#{index}"
            n_tokens = self.budget.length(len(piece), piece_text)
            if n_tokens > self.config.max_seq_length:
                stats.reject(piece_id, f"{n_tokens} tokens is over max_seq_length={self.config.max_seq_length}",
                             "n_over_token_budget")
                continue
            stats.n_examples += 1
            stats.audio_s += len(piece) / SAMPLE_RATE
            examples.append({"id": piece_id, "audio": piece, "text": piece_text})
        return examples


_EMPTY_RECORD: dict[str, Any] = {"id": None, "text": None, "path": None, "bytes": None, "array": None,
                                 "sample_rate": None, "error": None, "pass": 0}
"""A streamed record's columns: the row's id and text, its audio in one of four forms, or the reader's error; and
the pass over the corpus it belongs to (only the first pass is counted in the data report)."""


def _row_record(utterance: Any) -> dict[str, Any]:
    """A row in a form the streaming dataset can hold in its shuffle buffer (no decoded audio for files)."""
    source = utterance.audio_source
    record: dict[str, Any] = {**_EMPTY_RECORD, "id": utterance.id, "text": utterance.text}
    if isinstance(source, tuple):
        record["array"], record["sample_rate"] = source
    elif isinstance(source, bytes):
        record["bytes"] = source
    else:
        record["path"] = str(source)
    return record


def _record_source(record: dict[str, Any]) -> Any:
    if record["path"] is not None:
        return record["path"]
    if record["bytes"] is not None:
        return record["bytes"]
    return (record["array"], record["sample_rate"])


def _generate_rows(config: TrainConfig, eval: bool) -> Iterator[dict[str, Any]]:
    """The rows as records; a row the reader skipped comes through too, as a record with its ``error``.

    So the training process counts bad rows in the pass that meets them, through the same path as the examples
    (the dataset runs this generator in its own frame, or in a worker process).
    """
    from ..data import ReadReport

    skipped: list[Any] = []
    for utterance in open_rows(config, eval=eval, report=ReadReport(on_skip=skipped.append)):
        yield from _error_records(skipped)
        yield _row_record(utterance)
    yield from _error_records(skipped)


def _error_records(skipped: list[Any]) -> Iterator[dict[str, Any]]:
    for error in skipped:
        yield {**_EMPTY_RECORD, "id": error.id, "error": asdict(error)}
    skipped.clear()


def training_passes(config: TrainConfig) -> int | None:
    """Passes over the corpus the training stream holds: ``ceil(epochs)``, or no end with ``max_steps``."""
    return None if config.max_steps is not None else math.ceil(config.epochs)


def _shuffled(records: Iterator[dict[str, Any]], size: int, rng: Any) -> Iterator[dict[str, Any]]:
    """The records through a shuffle buffer of ``size`` (only the buffer's rows are held, never their audio)."""
    buffer: list[dict[str, Any]] = []
    for record in records:
        if len(buffer) < size:
            buffer.append(record)
            continue
        index = int(rng.integers(size))
        yield buffer[index]
        buffer[index] = record
    rng.shuffle(buffer)
    yield from buffer


def _training_rows(config: TrainConfig, passes: int | None) -> Iterator[dict[str, Any]]:
    """Pass after pass over the corpus, each shuffled on its own by ``(seed, pass)``; stops after ``passes`` (``None``:
    never), or after a pass that held no usable row. (``train`` checks first that one pass builds an example.)"""
    import itertools

    import numpy as np

    for index in itertools.count() if passes is None else range(passes):
        records = _generate_rows(config, False)
        if config.shuffle_buffer > 1:
            records = _shuffled(records, config.shuffle_buffer, np.random.default_rng([config.seed, index]))
        usable = 0
        for record in records:
            usable += record["error"] is None
            yield {**record, "pass": index}
        if not usable:
            return


def build_dataset(config: TrainConfig, builder: ExampleBuilder, *, eval: bool = False, world_size: int = 1) -> Any:
    """A ``datasets.IterableDataset`` of examples, streamed from disk; for training, shuffled in a buffer and, with
    ``config.group_by_duration``, grouped into steps of similar duration (:func:`group_by_duration`).

    The training stream holds every pass of the run in order (:func:`training_passes`): the trainer sees it as one
    epoch. Its order depends only on ``config.seed``, so batch ``n`` is the same batch whatever the number of
    processes, and a resumed run, which skips the batches its checkpoint had trained, goes on exactly where the
    interrupted one stopped, in any pass. (With one trainer epoch per pass, a run resumed in a later pass started
    over from the second pass's order.)
    ``world_size``: processes training together (each step takes ``batch_size`` examples per process, in
    consecutive runs of the stream).
    """
    from datasets import IterableDataset

    if eval:
        rows = IterableDataset.from_generator(_generate_rows, gen_kwargs={"config": config, "eval": True})
    else:
        rows = IterableDataset.from_generator(_training_rows,
                                              gen_kwargs={"config": config, "passes": training_passes(config)})

    def expand(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"id": [], "audio": [], "text": []}
        for index in range(len(batch["id"])):
            record = {key: batch[key][index] for key in batch}
            first = record["pass"] == 0  # the report describes one pass over the corpus
            if record["error"] is not None:
                if first:
                    builder.stats.bad_row(record["error"])
                continue
            for example in builder(record["id"], _record_source(record), record["text"], count=first):
                for key in out:
                    out[key].append(example[key])
        return out

    audio_and_error = [key for key in _EMPTY_RECORD if key not in ("id", "text")]
    examples = rows.map(expand, batched=True, batch_size=1, remove_columns=audio_and_error)
    if eval or not config.group_by_duration:
        return examples
    unit = config.batch_size * world_size
    return examples.map(group_by_duration, batched=True, batch_size=unit * config.group_by_duration,
                        with_indices=True, fn_kwargs={"unit": unit, "window": unit * config.group_by_duration,
                                                      "seed": config.seed})


def group_by_duration(batch: dict[str, list], indices: list[int], *, unit: int, window: int,
                      seed: int) -> dict[str, list]:
    """One window of examples in the order that pads least: sorted by audio length, cut into runs of ``unit``
    examples (one step's batch across processes), the runs in a random order seeded by ``seed`` and the window's
    position in the stream (``indices``: the examples' positions; ``window``: examples per window) (so batches of long and short clips alternate, and a resumed run repeats them).

    Every example of the window comes out exactly once; only the order changes.
    """
    import random

    order = sorted(range(len(batch["id"])), key=lambda i: (len(batch["audio"][i]), len(batch["text"][i])))
    runs = [order[start:start + unit] for start in range(0, len(order), unit)]
    random.Random(f"{seed}:{indices[0] // window if indices else 0}").shuffle(runs)
    chosen = [i for run in runs for i in run]
    return {key: [values[i] for i in chosen] for key, values in batch.items()}


def load_eval_clips(config: TrainConfig, builder: ExampleBuilder) -> Iterator[dict[str, Any]]:
    """The dev corpus' examples in file order (decoded lazily), for WER/CER during training."""
    for utterance in open_rows(config, eval=True):
        yield from builder(utterance.id, utterance.audio_source, utterance.text)
