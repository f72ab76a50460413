"""The shape of the installed package, checked from its source: layers that follow the data, no import cycle.

`lm_routing` (the repository's router/ and cli/) is read as one import graph, every import counted: those inside
functions and under TYPE_CHECKING too, since each is an arrow a reader must follow. The layers run one way:
the foundation (data, errors, registry) <- reading <- learning <- deciding <- judging <- the saved format <-
reporting <- one run (experiment) <- the CLI. An arrow never runs back up and there is no circle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from lm_routing.errors import RoutingInputError, settings

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


def _library_strings() -> list[tuple[str, int, str]]:
    """(file, line, text) of every string constant in the library (not the CLI): messages, notes, docstrings."""
    found = []
    for name, path in modules().items():
        if name.startswith("lm_routing.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((path.relative_to(ROOT).as_posix(), node.lineno, node.value))
    return found


def test_the_library_names_settings_never_flags():
    """The library speaks of settings (`«price_file»`); the CLI alone knows that is `--prices`. Flags of lm_eval's
    own CLI (`--log_samples`) are how users make the library's input, and may be named."""
    import click

    from lm_routing.cli.main import cli, option_names

    flags = {opt for command in cli.commands.values() for param in command.params if isinstance(param, click.Option)
             for opt in param.opts + param.secondary_opts if opt.startswith("--")}
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(flags, key=len, reverse=True))) + r")(?![\w-])")
    named = [f"{file}:{line}: {pattern.search(text).group()}" for file, line, text in _library_strings() if pattern.search(text)]
    assert named == []
    unknown = sorted({f"{file}:{line}: «{setting}»" for file, line, text in _library_strings()
                      for setting in settings(text) if setting not in option_names()})
    assert unknown == []  # every setting a message names is one the CLI can word as its option


def test_errors_carry_the_settings_they_name_and_the_cli_words_them():
    from lm_routing.cli.main import option_names

    error = RoutingInputError("prices.json: no such file; check «price_file» or give «prices» MODEL=USD")
    assert error.settings == ("price_file", "prices")
    assert str(error) == "prices.json: no such file; check price_file or give prices MODEL=USD"
    assert error.render(option_names()) == "prices.json: no such file; check --prices or give --price MODEL=USD"
