"""Transcribe many inputs: skip finished ones, write outputs atomically, keep going past failures."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, OutputWriteError, OvozError
from .io import InputItem, atomic_write
from .types import OUTPUT_FORMATS, TranscribeOptions, Transcript

logger = logging.getLogger(__name__)


def parse_formats(values: list[str] | None) -> tuple[str, ...]:
    """``["txt,json", "srt"]`` -> ``("txt", "json", "srt")``; ``all`` means every format."""
    chosen: list[str] = []
    for value in values or ["txt"]:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name == "all":
                chosen.extend(OUTPUT_FORMATS)
            elif name in OUTPUT_FORMATS:
                chosen.append(name)
            else:
                raise ConfigError(f"--output-format {name}: choose from {', '.join(OUTPUT_FORMATS)} or all.")
    if not chosen:
        raise ConfigError(f"--output-format {','.join(values or [])!r} names no format; choose from "
                          f"{', '.join(OUTPUT_FORMATS)} or all (default txt).")
    return tuple(dict.fromkeys(chosen))


@dataclass
class RunSummary:
    """What a multi-input run did."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0

    def describe(self) -> str:
        speed = f", {self.audio_s / self.wall_s:.1f}x real time" if self.wall_s > 0 and self.audio_s else ""
        lines = [
            (f"{len(self.done)} transcribed, {len(self.skipped)} skipped (outputs exist), "
             f"{len(self.failed)} failed; {self.audio_s:.1f} s of audio in {self.wall_s:.1f} s{speed}")
        ]
        lines += [f"  failed: {reason if reason.startswith(source) else f'{source}: {reason}'}"
                  for source, reason in self.failed]
        return "\n".join(lines)


def output_paths(item: InputItem, output_dir: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """Where ``item``'s outputs go: ``output_dir/<stem>.<fmt>`` (the stem's own dots are kept: ``a.b`` -> ``a.b.txt``)."""
    return {fmt: output_dir / item.stem.parent / f"{item.stem.name}.{fmt}" for fmt in formats}


def pending_items(items: list[InputItem], output_dir: Path | None, formats: tuple[str, ...],
                  overwrite: bool = False) -> list[InputItem]:
    """The items still to do: all of them without ``output_dir`` or with ``overwrite``, else those missing an output."""
    if output_dir is None or overwrite:
        return list(items)
    return [item for item in items
            if item.error is not None or not all(p.exists() for p in output_paths(item, output_dir, formats).values())]


def write_outputs(transcript: Transcript, formats: tuple[str, ...], paths: dict[str, Path] | None,
                  stdout: IO[str] | None = None, subtitle_options: Any = None) -> None:
    """Write each format to its file atomically, or all of them to ``stdout``."""
    from .subtitles import write

    for fmt in formats:
        if paths is None:
            write(transcript, fmt, stdout or sys.stdout, subtitle_options)
            continue
        try:
            with atomic_write(paths[fmt]) as handle:
                write(transcript, fmt, handle, subtitle_options)
        except OSError as error:  # disk full, read-only, quota: nothing half-written (atomic_write) and a plain line
            raise OutputWriteError(
                f"{paths[fmt]}: could not be written ({error.strerror or error}); free some space or give "
                "a writable --output-dir, then re-run (finished outputs are kept)."
            ) from error


def run(
    model: Any,
    items: list[InputItem],
    *,
    formats: tuple[str, ...],
    output_dir: Path | None,
    options: TranscribeOptions,
    overwrite: bool = False,
    on_text: Callable[[str], None] | None = None,
    subtitle_options: Any = None,
    progress: bool = True,
) -> RunSummary:
    """Transcribe ``items`` and write ``formats`` for each, to ``output_dir`` or stdout.

    Inputs whose outputs all exist are skipped unless ``overwrite``. Each input's outputs are written as soon
    as it is finished (models that batch decode ``options.batch_size`` inputs at a time), atomically, so after
    Ctrl-C or a crash an output is either complete or absent. A failing input (bad audio, a model error, an
    unwritable output) is logged, recorded in the summary and skipped; when a shared batch fails, its inputs
    are redone one by one so that only the culprit fails. ``KeyboardInterrupt`` stops the run. ``model``
    needs only a ``transcribe`` method and is not touched when nothing is pending.
    """
    from .audio import probe_duration
    from .progress import AudioProgress

    summary = RunSummary()
    started = time.perf_counter()
    if hasattr(model, "resolve_options"):
        options = model.resolve_options(options)  # batch_size=None: the decoder's choice
    pending = pending_items(items, output_dir, formats, overwrite)
    pending_ids = {id(item) for item in pending}
    for item in items:
        if id(item) not in pending_ids:
            logger.info("%s: outputs exist, skipping (use --overwrite to redo)", item.source)
            summary.skipped.append(str(item.source))
    durations = {id(item): probe_duration(item.source) or 0.0 for item in pending if item.error is None}
    total = sum(durations.values())
    if hasattr(model, "expect_audio"):
        model.expect_audio(total)  # a long job may compile the engine's fused kernels
    to_stdout = output_dir is None
    # Inputs that fit one prompt are decoded together, one batch of them at a time, when the model can batch
    # (Transcriber.transcribe_batch); streaming, or a model with only `transcribe`, goes one input at a time.
    batched = on_text is None and hasattr(model, "transcribe_batch")
    window = options.batch_size if batched else 1
    with AudioProgress(total, enabled=progress and on_text is None) as bar:
        for start in range(0, len(pending), window):
            group = pending[start : start + window]
            usable = [item for item in group if item.error is None]
            results = transcribe_together(model, usable, options) if batched and usable else {}
            for item in group:
                if item.error is not None:
                    _fail(summary, item, item.error)
                    continue
                if to_stdout and len(items) > 1:
                    print(f"==> {item.source} <==", file=sys.stdout, flush=True)
                try:
                    if batched:
                        transcript = results[id(item)]
                        if isinstance(transcript, BaseException):
                            raise transcript
                    else:
                        transcript = model.transcribe(item.source, options=options, on_text=on_text,
                                                      on_progress=bar.advance)
                    if on_text is not None:
                        print(file=sys.stdout, flush=True)  # end the streamed line
                    paths = None if to_stdout else output_paths(item, output_dir, formats)
                    # Streamed text already went to stdout: do not print the txt output a second time.
                    write_formats = tuple(f for f in formats if not (to_stdout and on_text is not None and f == "txt"))
                    write_outputs(transcript, write_formats, paths, subtitle_options=subtitle_options)
                except Exception as error:  # one bad input must not end a long run; the summary names it
                    _fail(summary, item, failure_reason(item, error))
                    continue
                finally:
                    if batched:
                        bar.advance(durations.get(id(item), 0.0))
                summary.done.append(str(item.source))
                summary.audio_s += transcript.duration_s
    summary.wall_s = time.perf_counter() - started
    return summary


def failure_reason(item: InputItem, error: BaseException) -> str:
    """The line a failed input is reported with: an ovoz error's own message (it names the input and the fix),
    else the exception's type and message (its traceback goes to the debug log)."""
    if isinstance(error, OvozError):
        return str(error)
    logger.debug("%s failed", item.source, exc_info=error)
    return f"{type(error).__name__}: {error}"


def transcribe_together(model: Any, items: list[InputItem], options: TranscribeOptions) -> dict[int, Any]:
    """``{id(item): Transcript or the exception it ended in}``, decoding ``items`` as one batch of the model's
    (``transcribe_batch``). A batch that fails as a whole (an error no input was blamed for, out of memory, ...)
    is redone one input at a time, so only its culprit fails."""
    try:
        outcomes = list(model.transcribe_batch([item.source for item in items], options=options))
    except Exception as error:  # recorded per input below; KeyboardInterrupt still stops the run
        if len(items) == 1:
            logger.debug("%s failed", items[0].source, exc_info=True)
            return {id(items[0]): error}
        logger.warning("a batch of %d inputs failed (%s: %s); redoing them one by one", len(items),
                       type(error).__name__, error)
        outcomes = []
        for item in items:
            outcomes.append(transcribe_together(model, [item], options)[id(item)])
    return {id(item): outcome for item, outcome in zip(items, outcomes)}


def _fail(summary: RunSummary, item: InputItem, reason: str) -> None:
    logger.error("%s", reason if str(item.source) in reason else f"{item.source}: {reason}")
    summary.failed.append((str(item.source), reason))

