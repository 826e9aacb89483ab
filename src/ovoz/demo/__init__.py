"""The demo model: a small Gemma 4 (audio + text towers) trained by ovoz from scratch on synthetic Uzbek speech.

``--base demo`` / ``ovoz.load(base="demo")`` load the model shipped in this package (``model/``). ``--adapter demo``
would add a LoRA adapter shipped in ``adapter/``; none is shipped yet (the LoRA run on the shifted domain diverged,
docs/demo_results.md), so it raises ``ModelNotFoundError``. The model knows espeak-ng's synthetic Uzbek speech only
and is barely trained (CER about 86% on held-out voices): it shows that ovoz's training and inference paths fit
together, offline; it is no speech recognizer. For real speech use the published adapter on Gemma 4 E4B.
How it was made: docs/demo.md.
"""

from __future__ import annotations

from pathlib import Path

DEMO = "demo"
"""The name that ``--base`` and ``--adapter`` resolve to the shipped folders."""
HERE = Path(__file__).resolve().parent
MODEL_DIR = HERE / "model"
ADAPTER_DIR = HERE / "adapter"


def is_demo(spec: object) -> bool:
    return isinstance(spec, (str, Path)) and str(spec) == DEMO and not Path(DEMO).exists()


def demo_folder(kind: str) -> Path:
    """The shipped model (``kind="base"``) or adapter folder; a typed error when this install lacks it."""
    from ..errors import ModelNotFoundError

    folder = MODEL_DIR if kind == "base" else ADAPTER_DIR
    marker = "model.safetensors" if kind == "base" else "adapter_model.safetensors"
    if not (folder / marker).is_file():
        raise ModelNotFoundError(
            f"--{kind} demo: the demo {'model' if kind == 'base' else 'adapter'} is not in this install "
            f"({folder / marker} is missing). Reinstall ovoz from a release or a full checkout, or rebuild it "
            "with benchmarks/demo_model.py (docs/demo.md)."
        )
    return folder
