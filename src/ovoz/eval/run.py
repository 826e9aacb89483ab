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
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..io import check_output_dir
from ..types import TranscribeOptions
from .cache import CACHE_FILE, HypothesisCache, options_key
from .decode import transcribe_utterances
from .report import write_report
from .results import EvalResult, ModelResult, ModelSpec
from .score import DEFAULT_NORMALIZERS, DEFAULT_PRIMARY, check_normalizers, score_hypotheses

if TYPE_CHECKING:
    from ..data import Utterance
    from ..transcriber import Transcriber

logger = logging.getLogger(__name__)


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
    options = options or TranscribeOptions()
    normalizers = check_normalizers(normalizers, primary)
    names = [spec.name for spec in models]
    if not models or len(set(names)) != len(names):
        raise ConfigError(f"give one or more models with unique names (got {', '.join(names) or 'none'})")
    report_dir = check_output_dir(report_dir, "report_dir")  # a file, read-only: before any decoding
    # Every adapter is checked before the first model runs (a corrupt one fails now, not after an hour).
    check_adapter = getattr(getattr(base, "decoder", base), "check_adapter", None)
    for spec in models:
        if spec.adapter is not None and check_adapter is not None:
            check_adapter(spec.adapter, local_files_only=local_files_only)
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
                    base.with_adapter(spec.adapter, merge=merge, local_files_only=local_files_only)
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
