"""The shape of the installed package, checked from its source: layers that follow the data, no import cycle.

`lm_routing` (the repository's router/ and cli/) is read as one import graph, every import counted: those inside
functions and under TYPE_CHECKING too, since each is an arrow a reader must follow. The layers run one way:
the foundation (data, errors, registry) <- reading <- learning <- deciding <- judging <- the saved format <-
reporting <- one run (experiment) <- the CLI. An arrow never runs back up and there is no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"lm_routing": ROOT / "router", "lm_routing.cli": ROOT / "cli"}  # setup.py's package_dir
LAYERS = ("lm_routing", "lm_routing.errors", "lm_routing.registry", "lm_routing.data"), ("lm_routing.reading",), \
    ("lm_routing.learning",), ("lm_routing.deciding",), ("lm_routing.judging",), ("lm_routing.saved",), \
    ("lm_routing.reporting",), ("lm_routing.experiment",), ("lm_routing.cli",)


def modules() -> dict[str, Path]:
    """Dotted installed name -> source file, for every module of lm_routing."""
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "lm_routing" and parts[0] == "cli":
                continue
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
                targets |= {resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known else resolve(base)
                            for alias in node.names}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def layer(name: str) -> int:
    for rank, members in enumerate(LAYERS):
        if any(name == m or (m != "lm_routing" and name.startswith(m + ".")) for m in members):
            return rank
    raise AssertionError(f"{name}: in no layer; add it to LAYERS")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_arrow_runs_back_up():
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets if layer(b) > layer(a))
    assert upward == []


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "lm_routing.learning.routers.knn" in graph["lm_routing.learning.routers.builtin"]  # inside a function
    assert "lm_routing.data" in graph["lm_routing.judging.select"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
