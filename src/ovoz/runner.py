"""Transcribe many inputs: skip finished ones, write outputs atomically, keep going past failures."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from .errors import ConfigError, OvozError
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
            f"{len(self.done)} transcribed, {len(self.skipped)} skipped (outputs exist), "
            f"{len(self.failed)} failed; {self.audio_s:.1f} s of audio in {self.wall_s:.1f} s{speed}"
        ]
        lines += [f"  failed: {source}: {reason}" for source, reason in self.failed]
        return "\n".join(lines)


def output_paths(item: InputItem, output_dir: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    return {fmt: output_dir / item.stem.with_suffix(f".{fmt}") for fmt in formats}


def write_outputs(transcript: Transcript, formats: tuple[str, ...], paths: dict[str, Path] | None,
                  stdout: IO[str] | None = None, subtitle_options: Any = None) -> None:
    """Write each format to its file atomically, or all of them to ``stdout``."""
    from .subtitles import write

    for fmt in formats:
        if paths is None:
            write(transcript, fmt, stdout or sys.stdout, subtitle_options)
        else:
            with atomic_write(paths[fmt]) as handle:
                write(transcript, fmt, handle, subtitle_options)


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
    """Transcribe ``items`` one by one; a failing input is logged, recorded and skipped."""
    from .audio import probe_duration
    from .progress import AudioProgress

    summary = RunSummary()
    started = time.perf_counter()
    pending: list[InputItem] = []
    for item in items:
        paths = output_paths(item, output_dir, formats) if output_dir else None
        if paths and not overwrite and all(p.exists() for p in paths.values()):
            logger.info("%s: outputs exist, skipping (use --overwrite to redo)", item.source)
            summary.skipped.append(str(item.source))
        else:
            pending.append(item)
    total = sum(probe_duration(item.source) or 0.0 for item in pending)
    with AudioProgress(total, enabled=progress and on_text is None) as bar:
        for item in pending:
            try:
                transcript = model.transcribe(item.source, options=options, on_text=on_text,
                                              on_progress=bar.advance)
            except OvozError as error:
                logger.error("%s", error)
                summary.failed.append((str(item.source), str(error)))
                continue
            if on_text is not None:
                print(file=sys.stdout, flush=True)  # end the streamed line
            paths = output_paths(item, output_dir, formats) if output_dir else None
            stream_formats = tuple(f for f in formats if not (on_text is not None and f == "txt" and paths is None))
            if len(items) > 1 and paths is None and stream_formats:
                print(f"==> {item.source} <==", file=sys.stdout)
            write_outputs(transcript, stream_formats, paths, subtitle_options=subtitle_options)
            summary.done.append(str(item.source))
            summary.audio_s += transcript.duration_s
    summary.wall_s = time.perf_counter() - started
    return summary


def summary_json(summary: RunSummary) -> str:
    return json.dumps({"done": summary.done, "skipped": summary.skipped, "failed": summary.failed}, ensure_ascii=False)
