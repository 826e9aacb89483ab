"""Decoding an evaluation corpus: hypotheses per utterance through the Transcriber, batch by batch, cached."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import OvozError
from ..types import TranscribeOptions
from .cache import HypothesisCache, model_key, options_key
from .corpus import estimated_duration
from .results import Hypothesis

if TYPE_CHECKING:
    from ..data import Utterance
    from ..transcriber import Transcriber

logger = logging.getLogger(__name__)


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
    from ..progress import AudioProgress

    if hasattr(transcriber, "resolve_options"):
        options = transcriber.resolve_options(options)  # batch_size=None: the decoder's choice
    m_key, o_key = model_key(transcriber.info), options_key(options)
    done = cache.get(m_key, o_key) if cache is not None else {}
    wanted = {u.id for u in utterances}
    done = {i: h for i, h in done.items() if i in wanted}
    pending = [u for u in utterances if u.id not in done]
    if done:
        logger.info("%s: %d of %d hypotheses found in the cache", description, len(done), len(utterances))
    estimates = {u.id: estimated_duration(u) for u in pending}
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
    outcomes = _isolated_batch(transcriber, batch, options)
    share = round((time.perf_counter() - started) / max(len(batch), 1), 4)
    results = []
    for utterance, outcome in zip(batch, outcomes):
        if isinstance(outcome, Exception):
            logger.warning("%s: %s", utterance.id, outcome)
            duration_s = round(estimated_duration(utterance), 3)  # what the header or array says, if anything
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




def _isolated_batch(transcriber: Transcriber, batch: Sequence[Utterance], options: TranscribeOptions) -> list[Any]:
    """``transcribe_batch`` over ``batch``; when the shared batch fails as a whole (an error no utterance was
    blamed for), each utterance is redone alone, so only the culprit gets an error (and a resumed run goes past it)."""
    try:
        return list(transcriber.transcribe_batch([u.audio_source for u in batch], options=options))
    except Exception as error:  # recorded on the culprit's hypothesis; KeyboardInterrupt stops
        if len(batch) == 1:
            logger.debug("%s failed", batch[0].id, exc_info=True)
            return [OvozError(f"{batch[0].id}: {type(error).__name__}: {error}")]
        logger.warning("a batch of %d utterances failed (%s: %s); redoing them one by one", len(batch),
                       type(error).__name__, error)
        return [_isolated_batch(transcriber, [utterance], options)[0] for utterance in batch]
