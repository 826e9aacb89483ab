"""Filesystem helpers: atomic writes and input discovery."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from .audio import is_audio_path
from .errors import ConfigError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only when the block succeeds.

    After Ctrl-C or a crash ``path`` is either absent or complete; never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, mode, encoding=encoding if "b" not in mode else None, newline="" if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class InputItem:
    """One input to transcribe and the name its outputs get (relative, without suffix)."""

    source: Path
    stem: Path


def expand_inputs(inputs: list[str]) -> list[InputItem]:
    """Files as given, folders searched recursively for audio/video files (sorted).

    Output stems keep the path below each folder, so ``a/x.wav`` and ``b/x.wav`` do not collide.
    """
    items: list[InputItem] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_path(p))
            if not found:
                raise ConfigError(f"{path}: the folder holds no audio or video files.")
            items.extend(InputItem(p, p.relative_to(path).with_suffix("")) for p in found)
        else:
            items.append(InputItem(path, Path(path.stem)))
    seen: dict[Path, Path] = {}
    for item in items:
        if item.stem in seen and seen[item.stem] != item.source:
            raise ConfigError(
                f"{item.source} and {seen[item.stem]} would write the same output name {item.stem}; "
                "rename one or transcribe them in separate runs."
            )
        seen[item.stem] = item.source
    return items
