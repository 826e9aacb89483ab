"""Model folders: a local folder as is, or a hub id downloaded (or found in the local cache) with huggingface_hub."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError, ModelNotFoundError


def resolve_folder(spec: str | Path, *, kind: str, local_files_only: bool, revision: str | None = None) -> Path:
    """A local folder as is, or a hub id downloaded (or found in the cache) with huggingface_hub.

    ``demo`` (when no such folder exists here) is the demo model or adapter shipped in the package (:mod:`ovoz.demo`).
    """
    from ..demo import demo_folder, is_demo

    if is_demo(spec):
        return demo_folder(kind)
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"--{kind} {spec}: is a file; give the model folder or a hub id.")
    if str(spec).startswith((".", "/", "~")) or str(spec).count("/") != 1:
        raise ModelNotFoundError(f"--{kind} {spec}: no such folder, and it is not a hub id of the form owner/name.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(spec), revision=revision, local_files_only=local_files_only))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        how = "it is not in the local Hugging Face cache" if local_files_only else (
            "it could not be downloaded and is not in the local cache"
        )
        raise ModelNotFoundError(
            f"--{kind} {spec}: {how} ({type(error).__name__}).\n"
            f"  Point ovoz at local weights instead: --{kind} /path/to/folder "
            f"(a folder with config.json{' and adapter_config.json' if kind == 'adapter' else ''}),\n"
            f"  or download them on a connected machine with `hf download {spec} --local-dir DIR` "
            "and copy DIR here."
        ) from error
