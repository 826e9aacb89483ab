"""A progress bar counted in seconds of audio (speed shown as audio-seconds per second)."""

from __future__ import annotations

import sys
from typing import Any


class AudioProgress:
    """tqdm over seconds of audio, on stderr; silent when disabled or stderr is not a terminal."""

    def __init__(self, total_s: float, *, enabled: bool = True, description: str = "transcribing") -> None:
        self.total_s = total_s
        self.enabled = enabled
        self.description = description
        self._bar: Any = None

    def __enter__(self) -> "AudioProgress":
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=round(self.total_s, 1) or None, unit="audio s", unit_scale=False, desc=self.description,
                file=sys.stderr, disable=not sys.stderr.isatty(), dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}, {rate_fmt}]",
            )
        return self

    def advance(self, seconds: float) -> None:
        """Count ``seconds`` more of audio as done."""
        if self._bar is not None:
            self._bar.update(seconds)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
