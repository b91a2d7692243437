"""The codebase's structure, checked: no import circle (function-level imports, importlib calls and module
names in strings included), small modules, a trainer that imports no method, one registry implementation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in sorted((SRC / "nebula").rglob("*.py")):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the nebula modules it imports anywhere in its text."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        package = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = subs if all(t in mods for t in subs) else [base, *subs]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
                targets = [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in mods and node.value != "nebula":
                targets = [node.value]  # a module named in a string is loaded by name somewhere
            for t in targets:
                r = resolve(t)
                if r and r != m:
                    graph[m].add(r)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_modules_are_small():
    long = {str(f.relative_to(SRC)): n for f in _modules().values() if (n := len(f.read_text().splitlines())) > 450}
    assert long == {}


def test_trainer_imports_no_method_and_no_evaluation():
    graph = import_graph()
    forbidden = ("nebula.latent", "nebula.nvc", "nebula.contrastive", "nebula.evaluate", "nebula.methods",
                 "nebula.modalities")
    bad = {m: sorted(t for t in targets if t.startswith(forbidden))
           for m, targets in graph.items() if m.startswith("nebula.train")}
    assert {m: t for m, t in bad.items() if t} == {}


@pytest.mark.parametrize("owner, name", [
    ("nebula.nn", "ENCODERS"), ("nebula.nn", "DECODERS"), ("nebula.losses", "RECONSTRUCTIONS"),
    ("nebula.data", "FORMATS"), ("nebula.data", "DATASETS"), ("nebula.methods", "METHODS"),
    ("nebula.modalities", "MODALITIES"), ("nebula.evaluate.registry", "EVALUATORS"),
    ("nebula.evaluate.plots", "RENDERERS"), ("nebula.cli", "COMMANDS"), ("nebula.train.loggers", "LOGGERS"),
    ("nebula.contrastive.backbones", "BACKBONES"),
])
def test_every_registry_is_the_one_implementation(owner, name):
    import importlib

    from nebula.registry import Registry

    registry = getattr(importlib.import_module(owner), name)
    assert isinstance(registry, Registry) and len(registry.names()) >= 1
    with pytest.raises(Exception, match="did you mean"):
        registry.lookup(registry.names()[0] + "x")
