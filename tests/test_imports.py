"""The package's layers: no import cycle (lazy imports inside functions count too), and no lower
layer importing a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import fastslow

ROOT = Path(fastslow.__file__).parent

# Lower number = lower layer; a module may import its own layer or lower ones only.
LAYERS = {
    "fastslow.errors": 0, "fastslow.quiet": 0, "fastslow.registry": 0, "fastslow.store": 0, "fastslow.report": 0,
    "fastslow.specs": 1, "fastslow.env": 1,
    "fastslow.zoo": 2, "fastslow.measure": 2, "fastslow.cost": 2, "fastslow.tpugraphs": 2,
    "fastslow.tasks": 3, "fastslow.optimize": 3, "fastslow.predict": 3,
    "fastslow.api": 4,
    "fastslow.cli": 5, "fastslow.__main__": 5, "fastslow.pytest_plugin": 5,
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - (node.level - 1)] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("fastslow"):
                found.add(t)
    return found


def _layer(module: str) -> int | None:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    return LAYERS[best] if best else None


def test_no_import_cycles():
    modules = _modules()
    graph = {m: {t for t in _imports(m, p, modules) if not m.startswith(t + ".") and not t.startswith(m + ".")}
             for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_lower_layers_never_import_higher_ones():
    modules = _modules()
    wrong = []
    for m, p in modules.items():
        mine = _layer(m)
        for t in _imports(m, p, modules):
            theirs = _layer(t)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{m} (layer {mine}) imports {t} (layer {theirs})")
    assert wrong == []


def test_every_module_has_a_layer():
    assert [m for m in _modules() if m != "fastslow" and _layer(m) is None] == []


def test_loading_the_api_does_not_load_scipy():
    # scipy's stats and optimize take 0.9 s to import; only the fits that use them load them, so
    # that `fastslow predict` (which fits nothing) does not wait for them.
    import subprocess
    import sys

    code = "import sys, fastslow.api, fastslow.cli; print(sorted(m for m in sys.modules if m.startswith('scipy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
