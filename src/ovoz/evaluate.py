"""Run one or more ovoz models over a corpus, score them under named normalizations, write a report.

The base model is loaded once; each adapter is put on it with PEFT, evaluated, and taken off again
(``PeftModel.unload``), so "base alone", "base + A" and "base + B" are compared in one run. Only the
last adapter of a run may be merged into the weights, because nothing needs the base after it.

Hypotheses are cached in the report folder (``hypotheses.jsonl``), keyed by model, decoding options
and utterance id, and appended batch by batch, so an interrupted run resumes where it stopped.
Utterances that fail (undecodable audio, too long) are not cached (a re-run retries them) and are
scored as empty hypotheses: a failure costs every reference word, it never flatters the WER.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, OvozError
from .types import TranscribeOptions

if TYPE_CHECKING:
    from .data import Utterance
    from .metrics import ErrorCounts, ScoreReport
    from .transcriber import Transcriber

logger = logging.getLogger(__name__)

__all__ = [
    "BASE_NAME",
    "CACHE_FILE",
    "DEFAULT_NORMALIZERS",
    "DURATION_BUCKETS_S",
    "BucketScore",
    "EvalResult",
    "Hypothesis",
    "HypothesisCache",
    "ModelResult",
    "ModelSpec",
    "NormalizerScore",
    "adapted",
    "evaluate",
    "read_corpus",
    "score_hypotheses",
    "transcribe_utterances",
]

BASE_NAME = "base"
"""The name of the base model evaluated alone (also accepted as an adapter spec meaning "no adapter")."""
DEFAULT_NORMALIZERS = ("orthographic", "normalized", "published")
DEFAULT_PRIMARY = "normalized"
DURATION_BUCKETS_S = (0.0, 2.0, 5.0, 10.0, 20.0, 30.0, math.inf)
"""Edges of the duration buckets, in seconds (each bucket is [low, high))."""
CACHE_FILE = "hypotheses.jsonl"
# Options that cannot change a greedy hypothesis, left out of the cache key so a re-run may change them.
_OPTIONS_NOT_IN_KEY = ("batch_size",)


@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate: the base alone (``adapter=None``) or the base plus one adapter."""

    name: str
    """The label in the report (a file-name-safe slug)."""
    adapter: str | None = None
    """A hub id or local folder of a LoRA adapter; None evaluates the base alone."""

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """``base``, ``ADAPTER`` or ``NAME=ADAPTER`` (NAME made of letters, digits, ``.``, ``_``, ``-``)."""
        text = text.strip()
        name, sep, rest = text.partition("=")
        if sep and rest and _slug(name) == name:
            return cls(name, None if rest == BASE_NAME else rest)
        if text == BASE_NAME:
            return cls(BASE_NAME, None)
        return cls(_slug(Path(text.rstrip("/")).name) or "adapter", text)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text).strip("._")


def unique_names(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The specs with repeated names made unique by a ``-2``, ``-3`` suffix."""
    seen: dict[str, int] = {}
    result = []
    for spec in specs:
        n = seen[spec.name] = seen.get(spec.name, 0) + 1
        result.append(spec if n == 1 else dataclasses.replace(spec, name=f"{spec.name}-{n}"))
    return result


@dataclass(frozen=True)
class Hypothesis:
    """A model's output for one utterance, as cached."""

    id: str
    text: str
    duration_s: float
    """Measured from the decoded audio."""
    avg_logprob: float | None = None
    n_tokens: int = 0
    truncated: bool = False
    """The token cap was hit or the repetition guard cut the text."""
    compute_s: float = 0.0
    """This utterance's share of its batch's wall time."""
    error: str | None = None
    """Why no hypothesis was produced (it is scored as empty)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class HypothesisCache:
    """Hypotheses per (model key, options key, utterance id) in a JSONL file, appended and flushed per batch.

    A line cut short by an interruption is ignored when read; the last record of a key wins.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._records: dict[tuple[str, str], dict[str, Hypothesis]] | None = None

    def _read(self) -> dict[tuple[str, str], dict[str, Hypothesis]]:
        if self._records is None:
            self._records = {}
            if self.path.exists():
                fields = {f.name for f in dataclasses.fields(Hypothesis)}
                with self.path.open("r", encoding="utf-8") as lines:
                    for line_no, line in enumerate(lines, start=1):
                        try:
                            record = json.loads(line)
                            key = (record.pop("model_key"), record.pop("options_key"))
                            hypothesis = Hypothesis(**{k: v for k, v in record.items() if k in fields})
                        except (ValueError, KeyError, TypeError):
                            logger.warning(
                                "%s: line %d is unreadable (interrupted write?); ignored", self.path, line_no
                            )
                            continue
                        self._records.setdefault(key, {})[hypothesis.id] = hypothesis
        return self._records

    def get(self, model_key: str, options_key: str) -> dict[str, Hypothesis]:
        """The cached hypotheses of one model under one set of decoding options, by utterance id."""
        return dict(self._read().get((model_key, options_key), {}))

    def append(self, model_key: str, options_key: str, hypotheses: Sequence[Hypothesis]) -> None:
        """Append hypotheses and flush them to disk before returning."""
        if not hypotheses:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut_short = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                cut_short = existing.read(1) != b"\n"
        with self.path.open("a", encoding="utf-8") as handle:
            if cut_short:  # an interrupted write left half a line: end it so the next record stands alone
                handle.write("\n")
            for hypothesis in hypotheses:
                record = {"model_key": model_key, "options_key": options_key, **hypothesis.to_dict()}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        bucket = self._read().setdefault((model_key, options_key), {})
        bucket.update((h.id, h) for h in hypotheses)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def options_key(options: TranscribeOptions) -> str:
    """A short hash of the decoding options that can change a hypothesis."""
    return _digest({k: v for k, v in options.to_dict().items() if k not in _OPTIONS_NOT_IN_KEY})


def model_key(info: Any) -> str:
    """A short hash naming a loaded model: base, adapter, dtype and quantization (not the device)."""
    return _digest({"base": info.base, "adapter": info.adapter, "dtype": info.dtype, "quantization": info.quantization})


# ---------------------------------------------------------------- reading the corpus


def read_corpus(
    spec: str | Path,
    split: str = "test",
    *,
    text_column: str | None = None,
    limit: int | None = None,
    format: str | None = None,
    on_error: str = "skip",
) -> tuple[list[Utterance], dict[str, Any]]:
    """All utterances of a corpus with a transcript, and a description of what was read.

    Repeated ids get a ``#2``, ``#3`` suffix (the cache is keyed by id).

    Args:
        spec: a JSONL manifest, Common Voice / FLEURS folder or TSV, or a local Hugging Face dataset.
        split: the split to read where the layout has several.
        text_column: the transcript field; None uses the format's default.
        limit: read at most this many utterances.
        format: skip layout detection (jsonl, common_voice, fleurs, hf).
        on_error: "skip" bad rows (listed in the description) or "raise" at the first.
    """
    from .data import ReadReport, detect_format, open_dataset

    report = ReadReport()
    found_format = format or detect_format(Path(spec).expanduser(), split)[0]
    utterances = list(open_dataset(spec, split, text_column, limit, format=format, on_error=on_error, report=report))
    seen: dict[str, int] = {}
    for index, utterance in enumerate(utterances):
        n = seen[utterance.id] = seen.get(utterance.id, 0) + 1
        if n > 1:
            logger.warning(
                "utterance id %s appears more than once; the copy at position %d is %s#%d",
                utterance.id,
                index,
                utterance.id,
                n,
            )
            utterances[index] = dataclasses.replace(utterance, id=f"{utterance.id}#{n}")
    if not utterances:
        raise ConfigError(f"{spec}: no utterance with a transcript was read (split {split}); check the path and split.")
    info = {
        "spec": str(spec),
        "format": found_format,
        "split": split,
        "limit": limit,
        "n_rows": report.n_rows,
        "n_utterances": len(utterances),
        "n_skipped_rows": report.n_skipped,
        "skipped_rows": [dataclasses.asdict(error) for error in report.skipped[:100]],
    }
    return utterances, info


# ---------------------------------------------------------------- decoding


def _estimated_duration(utterance: Utterance) -> float:
    if utterance.duration_s is not None:
        return utterance.duration_s
    from .audio import probe_duration

    source = utterance.audio_source
    if isinstance(source, tuple):
        return len(source[0]) / source[1]
    return probe_duration(source) or 0.0


def transcribe_utterances(
    transcriber: Transcriber,
    utterances: Sequence[Utterance],
    options: TranscribeOptions,
    *,
    cache: HypothesisCache | None = None,
    progress: bool = True,
    description: str = "evaluating",
) -> dict[str, Hypothesis]:
    """Hypotheses for every utterance, from the cache where present, else decoded ``batch_size`` at a time.

    Clips of at most 30 s go through ``Transcriber.generate_clips`` in batches of similar duration;
    longer ones through ``Transcriber.transcribe``. The new-token cap follows ``tokens_per_s_cap``.

    Args:
        transcriber: the loaded model.
        utterances: what to transcribe (ids unique).
        options: decoding options; ``batch_size`` clips are decoded together.
        cache: where finished hypotheses are read from and appended to; None keeps nothing.
        progress: show a progress bar (seconds of audio) on a terminal and log progress.
        description: the progress bar's label.
    """
    from .progress import AudioProgress

    m_key, o_key = model_key(transcriber.info), options_key(options)
    done = cache.get(m_key, o_key) if cache is not None else {}
    wanted = {u.id for u in utterances}
    done = {i: h for i, h in done.items() if i in wanted}
    pending = [u for u in utterances if u.id not in done]
    if done:
        logger.info("%s: %d of %d hypotheses found in the cache", description, len(done), len(utterances))
    estimates = {u.id: _estimated_duration(u) for u in pending}
    pending.sort(key=lambda u: -estimates[u.id])  # similar durations share a batch: less padding
    total_s = sum(estimates.values())
    if hasattr(transcriber, "expect_audio"):
        transcriber.expect_audio(total_s)  # a long evaluation may compile the engine's fused kernels
    finished_s, logged_at = 0.0, 0.0
    with AudioProgress(total_s, enabled=progress, description=description) as bar:
        for start in range(0, len(pending), options.batch_size):
            batch = pending[start : start + options.batch_size]
            results = _decode_batch(transcriber, batch, options)
            if cache is not None:
                cache.append(m_key, o_key, [h for h in results if h.error is None])
            done.update((h.id, h) for h in results)
            seconds = sum(estimates[u.id] for u in batch)
            bar.advance(seconds)
            finished_s += seconds
            if progress and total_s and (finished_s - logged_at >= 0.1 * total_s or start + len(batch) == len(pending)):
                logged_at = finished_s
                logger.info(
                    "%s: %d/%d utterances, %.0f/%.0f s of audio",
                    description,
                    len(done),
                    len(utterances),
                    finished_s,
                    total_s,
                )
    return done


def _decode_batch(transcriber: Transcriber, batch: Sequence[Utterance], options: TranscribeOptions) -> list[Hypothesis]:
    """Hypotheses for ``batch`` through ``Transcriber.transcribe_batch`` (clips of up to 30 s decoded together,
    longer ones split); an utterance that fails gets an empty hypothesis carrying its error."""
    started = time.perf_counter()
    outcomes = transcriber.transcribe_batch([u.audio_source for u in batch], options=options)
    share = round((time.perf_counter() - started) / max(len(batch), 1), 4)
    results = []
    for utterance, outcome in zip(batch, outcomes):
        if isinstance(outcome, OvozError):
            logger.warning("%s: %s", utterance.id, outcome)
            duration_s = round(_estimated_duration(utterance), 3)  # what the header or array says, if anything
            results.append(Hypothesis(utterance.id, "", duration_s, error=str(outcome), compute_s=share))
            continue
        logprobs = [s.avg_logprob for s in outcome.segments if s.avg_logprob is not None]
        results.append(Hypothesis(
            utterance.id,
            outcome.text,
            outcome.duration_s,
            sum(logprobs) / len(logprobs) if logprobs else None,
            sum(s.n_tokens for s in outcome.segments),
            any(s.truncated for s in outcome.segments),
            compute_s=share,
        ))
    return results


# ---------------------------------------------------------------- adapters on one base


def _has_lora(model: Any) -> bool:
    return any("lora_" in name for name, _ in model.named_modules())


@contextlib.contextmanager
def adapted(
    base: Transcriber, adapter: str | Path, *, merge: bool = False, local_files_only: bool = False
) -> Iterator[Transcriber]:
    """``base`` with a LoRA adapter put on for the duration of the block, then taken off again.

    Args:
        base: a Transcriber loaded without an adapter; its weights are not changed unless ``merge``.
        adapter: a hub id or local folder.
        merge: fold the adapter into the weights (faster decoding); the base is then spent and its
            ``model`` set to None, so use it only for the last model of a run.
        local_files_only: never contact the hub to resolve ``adapter``.

    Raises:
        ConfigError: ``base`` already carries an adapter.
        AdapterError: the adapter is malformed or does not fit the base.
    """
    from .gemma.adapter import apply_adapter
    from .gemma.loading import resolve_folder
    from .transcriber import Transcriber

    if base.model is None:
        raise ConfigError("this base model was spent by merging an adapter into it; load it again.")
    if base.info.adapter is not None or _has_lora(base.model):
        raise ConfigError("the base Transcriber already carries an adapter; load the base with adapter=None.")
    folder = resolve_folder(adapter, kind="adapter", local_files_only=local_files_only)
    peft_model, adapter_info = apply_adapter(base.model, folder)
    logger.info("adapter %s: %s", adapter, adapter_info.summary())
    merged = merge and not base.info.quantization
    model = peft_model.merge_and_unload() if merged else peft_model
    model.eval()
    info = dataclasses.replace(
        base.info,
        adapter=str(adapter),
        adapter_summary=adapter_info.summary(),
        adapted_parts=adapter_info.parts,
        merged=merged,
    )
    try:
        yield Transcriber(model, base.processor, info, engine=base.engine, fused_kernels=base.fused_kernels)
    finally:
        if merged:
            base.model = None
        else:
            base.model = peft_model.unload()  # removes the LoRA layers; the base weights were never touched
            if _has_lora(base.model):
                raise RuntimeError("LoRA layers remained in the base model after unloading an adapter")


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class BucketScore:
    """Summed error counts of the utterances whose duration falls in [low_s, high_s)."""

    low_s: float
    high_s: float
    n_utterances: int
    counts: ErrorCounts

    @property
    def label(self) -> str:
        return f"{self.low_s:g}-{self.high_s:g} s" if math.isfinite(self.high_s) else f">= {self.low_s:g} s"


@dataclass(frozen=True)
class NormalizerScore:
    """One model's scores under one normalization."""

    name: str
    report: ScoreReport
    """Per-utterance and corpus counts, dropped positions and top confusions (from ovoz.metrics)."""
    buckets: tuple[BucketScore, ...]

    @property
    def description(self) -> str:
        return self.report.normalizer


@dataclass
class ModelResult:
    """What one model produced on the corpus and how it scored."""

    spec: ModelSpec
    info: dict[str, Any]
    options_key: str
    hypotheses: list[Hypothesis]
    """In corpus order."""
    scores: dict[str, NormalizerScore]

    @property
    def failed(self) -> list[Hypothesis]:
        return [h for h in self.hypotheses if h.error is not None]

    @property
    def audio_s(self) -> float:
        return sum(h.duration_s for h in self.hypotheses)

    @property
    def compute_s(self) -> float:
        return sum(h.compute_s for h in self.hypotheses)

    @property
    def rtfx(self) -> float | None:
        """Seconds of audio per second of compute (over the hypotheses' recorded compute times)."""
        return self.audio_s / self.compute_s if self.compute_s > 0 else None


@dataclass
class EvalResult:
    """Everything a report shows."""

    dataset: dict[str, Any]
    utterances: list[Utterance]
    options: TranscribeOptions
    normalizers: tuple[str, ...]
    primary: str
    models: list[ModelResult] = field(default_factory=list)
    report_dir: Path | None = None


def _buckets(report: ScoreReport, durations: Sequence[float], edges: Sequence[float]) -> tuple[BucketScore, ...]:
    from .metrics import sum_counts

    result = []
    for low, high in itertools.pairwise(edges):
        inside = [u.counts for u in report.utterances if low <= durations[u.index] < high]
        if inside:
            result.append(BucketScore(low, high, len(inside), sum_counts(inside)))
    return tuple(result)


def score_hypotheses(
    utterances: Sequence[Utterance],
    hypotheses: Sequence[Hypothesis],
    normalizers: Sequence[str] = DEFAULT_NORMALIZERS,
    *,
    n_confusions: int = 20,
    bucket_edges_s: Sequence[float] = DURATION_BUCKETS_S,
) -> dict[str, NormalizerScore]:
    """Score hypotheses (in the utterances' order) under each normalization; failures score as empty.

    Args:
        utterances: the references, in corpus order.
        hypotheses: one per utterance, same order.
        normalizers: names from ``ovoz.text.available_normalizers()``.
        n_confusions: how many of the most frequent word substitutions to keep.
        bucket_edges_s: increasing duration edges in seconds for the WER-by-duration table.
    """
    from .metrics import score

    if len(utterances) != len(hypotheses):
        raise ValueError("one hypothesis per utterance is needed")
    pairs = [(u.text or "", h.text if h.error is None else "") for u, h in zip(utterances, hypotheses)]
    durations = [h.duration_s or (u.duration_s or 0.0) for u, h in zip(utterances, hypotheses)]
    scores = {}
    for name in normalizers:
        report = score(pairs, name, n_confusions=n_confusions)
        scores[name] = NormalizerScore(name, report, _buckets(report, durations, bucket_edges_s))
    return scores


# ---------------------------------------------------------------- the whole run


def _check_normalizers(normalizers: Sequence[str], primary: str) -> tuple[str, ...]:
    from .text import get_normalizer

    chosen = tuple(dict.fromkeys(normalizers))
    if not chosen:
        raise ConfigError("give at least one normalizer")
    for name in chosen:
        get_normalizer(name)  # raises ConfigError naming the valid choices
    if primary not in chosen:
        raise ConfigError(f"the normalizer to sort by ({primary}) must be one of those scored: {', '.join(chosen)}")
    return chosen


def evaluate(
    base: Transcriber,
    models: Sequence[ModelSpec],
    utterances: Sequence[Utterance],
    report_dir: str | Path,
    *,
    options: TranscribeOptions | None = None,
    normalizers: Sequence[str] = DEFAULT_NORMALIZERS,
    primary: str = DEFAULT_PRIMARY,
    n_confusions: int = 20,
    dataset: dict[str, Any] | None = None,
    progress: bool = True,
    merge_last: bool = False,
    local_files_only: bool = False,
    use_cache: bool = True,
) -> EvalResult:
    """Evaluate each model on the utterances, write the report folder, and return the results.

    The base-alone models run first, then the adapters in the order given; results keep the given order.

    Args:
        base: a Transcriber loaded with ``adapter=None`` (not merged); it is left as it was unless
            ``merge_last``.
        models: what to evaluate; names must be unique.
        utterances: the corpus, with transcripts and unique ids (see ``read_corpus``).
        report_dir: the folder the report and the hypothesis cache are written to.
        options: decoding options (``batch_size``, ``max_new_tokens``, ...).
        normalizers: the normalizations every number is reported under.
        primary: the normalization the per-utterance table is sorted by and the plots show.
        n_confusions: word confusions listed per model and normalization.
        dataset: a description of the corpus for the report (``read_corpus`` returns one).
        progress: show progress.
        merge_last: merge the last adapter into the base for speed; the base is spent afterwards.
        local_files_only: never contact the hub to resolve adapters.
        use_cache: read hypotheses cached by an earlier run (new ones are always written).
    """
    from .report import write_report

    options = options or TranscribeOptions()
    normalizers = _check_normalizers(normalizers, primary)
    names = [spec.name for spec in models]
    if not models or len(set(names)) != len(names):
        raise ConfigError(f"give one or more models with unique names (got {', '.join(names) or 'none'})")
    report_dir = Path(report_dir)
    cache = HypothesisCache(report_dir / CACHE_FILE)
    if not use_cache and cache.path.exists():
        cache.path.unlink()
    order = sorted(range(len(models)), key=lambda i: models[i].adapter is not None)  # stable: base first
    last_adapter = order[-1] if models[order[-1]].adapter is not None else None
    results: dict[int, ModelResult] = {}
    for i in order:
        spec = models[i]
        with contextlib.ExitStack() as stack:
            transcriber = base
            if spec.adapter is not None:
                merge = merge_last and i == last_adapter
                transcriber = stack.enter_context(
                    adapted(base, spec.adapter, merge=merge, local_files_only=local_files_only)
                )
            hypotheses = transcribe_utterances(
                transcriber, utterances, options, cache=cache, progress=progress, description=spec.name
            )
            info = transcriber.info.to_dict()
        ordered = [hypotheses[u.id] for u in utterances]
        scores = score_hypotheses(utterances, ordered, normalizers, n_confusions=n_confusions)
        results[i] = ModelResult(spec, info, options_key(options), ordered, scores)
        logger.info("%s: WER %s", spec.name, ", ".join(f"{n} {scores[n].report.wer:.2%}" for n in normalizers))
    result = EvalResult(
        dataset or {},
        list(utterances),
        options,
        normalizers,
        primary,
        [results[i] for i in range(len(models))],
        report_dir,
    )
    write_report(result, report_dir)
    return result
