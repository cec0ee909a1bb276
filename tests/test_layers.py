"""The package's import graph follows DESIGN.md's layers: every import (function-level ones too)
points down, there is no import cycle, and no module imports another module's private names."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "affectbench"

# Layer of each top-level part of the package (DESIGN.md "Layers"); higher may import lower.
LAYER = {
    "core": 0,
    "media": 1,
    "metrics": 1,
    "prompts": 1,
    "datasets": 1,
    "perception": 1,
    "models": 1,
    "knowledge": 2,
    "engine": 3,
    "analysis": 4,
    "finetune": 4,
    "report": 4,
    "cli": 5,
    "config": 5,
    "__main__": 5,
    "": 5,  # affectbench/__init__
}
# Imports between parts of one layer that DESIGN.md allows (everything else in a layer is separate).
SIDEWAYS = {
    ("datasets", "media"),  # `data check` decodes media to say whether a clip is readable
    ("perception", "media"),
    ("models", "media"),
    ("models", "perception"),  # the cascade backend runs the perception models
    ("report", "analysis"),
    ("cli", "config"),  # the terminal reads experiment files
    ("cli", ""),  # the version
}


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module(p)[0]: p for p in PKG.rglob("*.py")}


def _imports(path: Path, known: dict[str, Path]):
    """(target module, imported names, line) for every affectbench import in `path`."""
    mod, is_pkg = _module(path)
    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "affectbench":
                    yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "affectbench":
                continue
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            if subs:  # `from pkg import submodule`
                for s in subs:
                    yield s, [], node.lineno
                names = [n for n in names if f"{target}.{n}" not in known]
                if not names:
                    continue
            yield target, names, node.lineno


def _part(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


@functools.cache
def _graph() -> dict[str, list[tuple[str, list[str], int]]]:
    known = _modules()
    return {m: list(_imports(p, known)) for m, p in known.items()}


def _entry_point(mod: str) -> bool:
    return mod.endswith("__main__")  # `python -m affectbench.finetune` is a terminal entry point (L4)


def test_every_import_points_down_a_layer():
    bad = []
    for mod, edges in _graph().items():
        src = "__main__" if _entry_point(mod) else _part(mod)
        for target, _, line in edges:
            dst = _part(target)
            if src == dst or src == "__main__" or (src, dst) in SIDEWAYS:
                continue
            if LAYER[dst] >= LAYER[src]:
                bad.append(f"{mod}:{line} imports {target} (layer {LAYER[src]} -> {LAYER[dst]})")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(bad)


def test_no_import_cycles():
    known = set(_modules())
    graph = {m: {t for t, _, _ in edges if t in known} for m, edges in _graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names():
    bad = []
    for mod, edges in _graph().items():
        for target, names, line in edges:
            parent = target.rsplit(".", 1)[0]
            private_module = target.rsplit(".", 1)[-1].startswith("_") and not target.endswith("__")
            if private_module and not (mod == parent or mod.startswith(parent + ".")):
                bad.append(f"{mod}:{line} imports the private module {target}")
            for n in names:
                if n.startswith("_") and not n.startswith("__") and target != mod:
                    bad.append(f"{mod}:{line} imports {target}.{n}")
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_the_package_root_holds_only_the_entry_points_and_the_layers():
    root = {p.name for p in PKG.iterdir() if p.suffix == ".py"}
    assert root <= {"__init__.py", "__main__.py", "cli.py", "config.py"}, sorted(root)
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {k for k in LAYER if k and k not in ("cli", "config", "__main__")}, sorted(folders)


def _arrows(src: str, dst_ok) -> list[str]:
    """Imports made by modules of part `src` whose target part fails `dst_ok`, as "module:line -> target"."""
    return [
        f"{m}:{line} -> {t}"
        for m, edges in _graph().items()
        if _part(m) == src
        for t, _, line in edges
        if not dst_ok(_part(t))
    ]


def test_core_imports_nothing_else_of_the_package():
    bad = _arrows("core", lambda dst: dst == "core")
    assert not bad, bad


@pytest.mark.parametrize("reader", ["analysis", "report"])
def test_reading_results_never_imports_a_model(reader):
    """DESIGN.md: `report` (and analysis) never import `models`: reading results needs no torch."""
    bad = _arrows(reader, lambda dst: dst != "models")
    assert not bad, bad
