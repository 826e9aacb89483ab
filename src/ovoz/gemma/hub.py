"""Model folders: a local folder as is, or a hub id downloaded (or found in the local cache) with huggingface_hub.

Everything here is checked before any weight is read, and messages name the option the caller wrote
(:func:`ovoz.errors.named`: ``--base`` from the ``ovoz`` command, ``base=`` from Python).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, ModelNotFoundError, named


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
        raise ModelLoadError(f"{named(kind, spec)}: is a file; give the model folder or a hub id.")
    if str(spec).startswith((".", "/", "~")) or str(spec).count("/") != 1:
        raise ModelNotFoundError(f"{named(kind, spec)}: no such folder, and it is not a hub id of the form owner/name.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(spec), revision=revision, local_files_only=local_files_only))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        how = "it is not in the local Hugging Face cache" if local_files_only else (
            "it could not be downloaded and is not in the local cache"
        )
        holds = ("adapter_config.json and adapter_model.safetensors" if kind == "adapter"
                 else "config.json, the weights and the tokenizer")
        raise ModelNotFoundError(
            f"{named(kind, spec)}: {how} ({type(error).__name__}).\n"
            f"  Point ovoz at local weights instead: {named(kind, '/path/to/folder')} (a folder with {holds}),\n"
            f"  or download them on a connected machine with `hf download {spec} --local-dir DIR` "
            "and copy DIR here."
        ) from error


def resolve_folders(base: str | Path, adapter: str | Path | None, *, local_files_only: bool,
                    revision: str | None = None) -> tuple[Path, Path | None]:
    """The base and adapter folders, checked before any weight is read: every piece that cannot be found is
    named in one :class:`ModelNotFoundError` (not the base first, then the adapter on the next try); the base
    folder must hold a Gemma 4 ``config.json`` and the adapter folder a readable LoRA adapter."""
    from .adapter import inspect_adapter

    problems: list[ModelLoadError] = []
    folders: list[Path | None] = []
    for kind, spec in (("base", base), ("adapter", adapter)):
        if spec is None:
            folders.append(None)
            continue
        try:
            folders.append(resolve_folder(spec, kind=kind, local_files_only=local_files_only,
                                          revision=revision if kind == "base" else None))
        except ModelNotFoundError as error:
            problems.append(error)
            folders.append(None)
    if len(problems) > 1:
        raise ModelNotFoundError("\n".join(str(problem) for problem in problems)) from problems[0]
    if problems:
        raise problems[0]
    base_folder, adapter_folder = folders
    assert base_folder is not None
    read_config(base_folder, base)
    if adapter_folder is not None:
        inspect_adapter(adapter_folder)  # a malformed or corrupt adapter fails before the base's weights load
    return base_folder, adapter_folder


def read_config(folder: Path, spec: Any = None) -> dict[str, Any]:
    """The base folder's ``config.json``; a :class:`ModelLoadError` naming the base when it is missing, unreadable
    or not a Gemma 4 model."""
    import json

    name = named("base", spec if spec is not None else folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{name}: {folder} holds no config.json; give a Gemma 4 model folder (config.json, "
                             "model*.safetensors, tokenizer files), e.g. one written by `hf download`.")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{name}: {config_file} cannot be read ({error}); download the model again.") from error
    if not isinstance(config, dict) or config.get("model_type") != "gemma4":
        found = config.get("model_type") if isinstance(config, dict) else None
        raise ModelLoadError(f"{name}: model_type={found!r}; ovoz runs Gemma 4 audio models (model_type gemma4).")
    return config


def weight_errors() -> tuple[type[BaseException], ...]:
    """What ``from_pretrained`` raises for weights it cannot read (safetensors' own error included)."""
    from safetensors import SafetensorError

    return (OSError, ValueError, RuntimeError, SafetensorError)


def weights_error(base: Any, error: BaseException) -> ModelLoadError:
    """The one-line error for base weights that ``from_pretrained`` could not read (corrupt, truncated, ...)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelLoadError(
        f"{named('base', base)}: the model weights could not be loaded ({text}). A corrupt or incomplete download? "
        "Download the model again, or give another folder."
    )
