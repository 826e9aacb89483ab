"""The layering of docs/architecture.md, enforced: no import cycle, Gemma/peft only in ovoz.gemma, light import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for file in SRC.rglob("*.py"):
        parts = file.relative_to(SRC).with_suffix("").parts
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (file, package)
    return found


def _imports(name: str, file: Path, package: bool) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every import statement, module-level or inside functions."""
    base = name if package else name.rpartition(".")[0]
    result = []
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parts = parts[: len(parts) - node.level + 1]
                target = ".".join(parts + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            result.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            result.extend((alias.name, []) for alias in node.names)
    return result


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (file, package) in modules.items():
        for target, names in _imports(name, file, package):
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            # ``from . import pipeline`` imports the submodule, not the package's own code.
            for dependency in submodules or ([target] if target in modules else []):
                if dependency != name:
                    graph[name].add(dependency)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_under_src():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_ovoz_gemma_imports_gemma4_classes_and_peft():
    offenders = []
    for name, (file, package) in _modules().items():
        if name == "ovoz.gemma" or name.startswith("ovoz.gemma."):
            continue
        for target, names in _imports(name, file, package):
            gemma = target.startswith("transformers.models.gemma4") or any(n.startswith("Gemma4") for n in names)
            if gemma or target.split(".")[0] in ("peft", "unsloth"):
                offenders.append(f"{name}: {target}")
    assert offenders == []


def test_import_ovoz_stays_light():
    code = ("import sys, ovoz, ovoz.types, ovoz.decoding, ovoz.errors; "
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl', 'fastapi', 'ray') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
