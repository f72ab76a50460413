"""setup.cfg's dependencies are exactly what the shipped code imports: nothing undeclared, nothing unused.

Every `import` of lm_routing_tasks/, router/, cli/ and _lm_routing_hook.py counts, those inside
functions included (a lazy import is still needed at run time). matplotlib is an extra (`plot`),
never a runtime requirement: only `routing-eval --plot` and the benchmarks draw. Dask is an extra
(`cluster`): only `routing-eval --scheduler` imports it.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("lm_routing_tasks", "router", "cli", "_lm_routing_hook.py")
OWN = {"lm_routing_tasks", "lm_routing", "_lm_routing_hook"}
# import name -> distribution name, where they differ by more than '_' vs '-'
DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow",
                 "distributed": "dask"}  # dask.distributed's package, installed as dask[distributed]


def normalized(name: str) -> str:
    """PEP 503's form of a distribution name: lower case, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions() -> dict[str, set[str]]:
    """{distribution: files importing it} for every third-party import of the shipped code."""
    found: dict[str, set[str]] = {}
    files = [p for item in SHIPPED for p in ([ROOT / item] if item.endswith(".py") else (ROOT / item).rglob("*.py"))]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(normalized(DISTRIBUTIONS.get(top, top)), set()).add(path.relative_to(ROOT).as_posix())
    return found


def declared(lines: str) -> set[str]:
    """Distribution names of setup.cfg requirement lines ('lm-eval[hf]>=0.4.13,<0.5' -> 'lm-eval')."""
    return {normalized(re.match(r"[A-Za-z0-9_.-]+", line.strip()).group()) for line in lines.splitlines()
            if line.strip() and not line.strip().startswith("#")}


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def test_install_requires_equals_the_imports():
    config = setup_cfg()
    required = declared(config["options"]["install_requires"])
    plot = declared(config["options.extras_require"]["plot"])
    cluster = declared(config["options.extras_require"]["cluster"])
    imported = imported_distributions()
    undeclared = {name: sorted(files) for name, files in imported.items() if name not in required | plot | cluster}
    assert not undeclared, f"imported but not in setup.cfg install_requires: {undeclared}"
    unused = required - imported.keys()
    assert not unused, f"in install_requires but imported nowhere in {', '.join(SHIPPED)}: {sorted(unused)}"
    assert plot <= imported.keys(), f"extra 'plot' declares what nothing imports: {sorted(plot - imported.keys())}"
    assert cluster <= imported.keys(), f"extra 'cluster' declares what nothing imports: {sorted(cluster - imported.keys())}"


def test_dask_is_an_extra_only_and_the_test_extra_installs_it():
    config = setup_cfg()
    assert "dask" not in declared(config["options"]["install_requires"])
    extras = config["options.extras_require"]
    assert "dask" in declared(extras["cluster"]) and "dask" in declared(extras["test"])


def test_matplotlib_is_an_extra_only():
    config = setup_cfg()
    assert "matplotlib" not in declared(config["options"]["install_requires"])
    extras = config["options.extras_require"]
    assert "matplotlib" in declared(extras["plot"]) and "matplotlib" in declared(extras["test"])


def test_the_comparison_sees_lazy_imports_and_maps_names():
    imported = imported_distributions()
    assert "router/reporting/plots.py" in imported["matplotlib"]  # imported inside a function only
    assert "scikit-learn" in imported and "sklearn" not in imported


def test_the_wheel_installs_one_namespace(tmp_path):
    """What `pip install .` puts into site-packages: lm_routing (router/ and cli/ inside it), the task plugin and
    the discovery hook; nothing named `router` or `cli` that another distribution could overwrite."""
    import subprocess
    import zipfile

    # the venv's own setuptools when it has one (offline); else pip fetches the build backend from the registry
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("lm_routing-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"lm_routing", "lm_routing_tasks", "_lm_routing_hook.py", "lm_routing.pth"}
    assert {"lm_routing/cli/main.py", "lm_routing/learning/routers/knn.py", "lm_routing/judging/select.py",
            "lm_routing_tasks/tasks/gsm8k/gsm8k_cot_maj10.yaml"} <= set(names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "routing-eval = lm_routing.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
