"""Do two adapter folders have the same layout? LoRA tensor names and shapes, and the config fields that set it.

    python benchmarks/compare_adapters.py out-transformers/ out-unsloth/

Issue 6 asks both training backends to write the same adapter layout: this is the check that was run on the GPU
box on the two backends' outputs (BENCHMARKS.md, docs/training.md). Weights are not compared (they differ with
the backend's numerics). Exits 1 when the layouts differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LAYOUT_FIELDS = ("r", "lora_alpha", "lora_dropout", "bias", "target_modules", "modules_to_save", "use_rslora",
                 "use_dora", "peft_type", "task_type")


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118 (not a dict)


def compare(a: Path, b: Path) -> list[str]:
    """The differences, one line each (empty when the layouts agree)."""
    shapes_a, shapes_b = tensor_shapes(a), tensor_shapes(b)
    lines = [f"only in {folder}: {name}" for folder, mine, other in ((a, shapes_a, shapes_b), (b, shapes_b, shapes_a))
             for name in sorted(set(mine) - set(other))]
    lines += [f"shape of {name}: {shapes_a[name]} vs {shapes_b[name]}"
              for name in sorted(set(shapes_a) & set(shapes_b)) if shapes_a[name] != shapes_b[name]]
    config_a, config_b = (json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")) for folder in (a, b))
    lines += [f"{field}: {config_a.get(field)!r} vs {config_b.get(field)!r}"
              for field in LAYOUT_FIELDS if config_a.get(field) != config_b.get(field)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    differences = compare(args.a, args.b)
    n_tensors = len(tensor_shapes(args.a))
    if differences:
        print(f"layouts differ ({len(differences)}):")
        print("\n".join(f"  {line}" for line in differences))
        return 1
    print(f"same layout: {n_tensors} LoRA tensors with the same names and shapes; same {', '.join(LAYOUT_FIELDS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
