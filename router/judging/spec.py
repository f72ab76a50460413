"""What one evaluation run is asked to do (`EvalSpec`), and which router takes which hyper-parameter.

The CLI builds an EvalSpec from its options and hands it to lm_routing.experiment; nothing here
knows about flags: a hyper-parameter no chosen router takes comes back as data (`Unused`), and
the CLI words it in terms of its own option names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lm_routing.reading.logs import ReadOptions
from lm_routing.deciding.policies import POLICIES
from lm_routing.learning.routers import ROUTERS
from lm_routing.learning.routers.base import hyper_parameters
from lm_routing.judging.select import AUTO


@dataclass(frozen=True)
class Unused:
    """A given hyper-parameter that some chosen routers do not take (`ignored_by`); `used_by` the others."""

    param: str
    ignored_by: tuple[str, ...]
    used_by: tuple[str, ...]


def accepted_params(name: str) -> tuple[str, ...]:
    """The hyper-parameters router `name` takes (its __init__ arguments)."""
    return tuple(hyper_parameters(ROUTERS[name])) if name in ROUTERS else ()


@dataclass(frozen=True)
class EvalSpec:
    """The options of one `routing-eval evaluate` run, by the library's names (fractions 0-1, seconds, USD)."""

    logs: Path = Path("results")  # harness --output_path folder
    scores: tuple[Path, ...] = ()  # score tables (training queries when test_scores are given)
    test_scores: tuple[Path, ...] = ()
    solved_threshold: float = 0.5  # score at or above which a query counts as solved
    read: ReadOptions = ReadOptions()
    latencies: dict[str, float] = field(default_factory=dict)  # declared s/query per model
    prices: dict[str, float] = field(default_factory=dict)  # declared price per query per model
    routers: tuple[str, ...] = (AUTO,)
    policies: tuple[str, ...] = tuple(POLICIES)
    routers_named: bool = True  # False: `routers` is the default, and saved routers (load_dirs) replace it
    policies_named: bool = True  # False: heavy routers run only the policies that need no extra fits
    hyper: dict[str, object] = field(default_factory=dict)  # given hyper-parameters, by the names of routers' __init__ arguments
    protocol: str = "auto"
    folds: int = 5
    seed: int = 0
    max_latency: float | None = None  # s/query
    budget: float | None = None  # mean price per query
    cascades: tuple[tuple[str, ...], ...] = ()  # chains of pool model names, cheapest first
    cascade_threshold: float | None = None  # agreement 0-1
    agree_cascades: tuple[tuple[tuple[str, ...], ...], ...] = ()  # agreement cascades: stages of model names
    agree_share: float | None = None  # share 0-1 of a stage that must agree; None: chosen on training queries
    price_file: Path | None = None  # USD per 1M input/output tokens per model (lm_routing.deciding.cost.read_prices)
    load_dirs: tuple[Path, ...] = ()  # saved routers to score
    save_dir: Path | None = None  # new folder for the trained routers
    output_path: Path | None = None  # folder for the routed models in lm-eval's layout
    plot_path: Path | None = None  # new .png
    as_json: bool = False
    allow_overlap: bool = True  # test queries that are also training queries: scored with a warning; False: an error
    scheduler: str | None = None  # Dask scheduler address: folds and auto's candidates run on that cluster

    def trained_routers(self) -> list[str]:
        """The routers to train: none when only saved routers are scored and none were named."""
        return list(self.routers) if not self.load_dirs or self.routers_named else []

    def router_params(self) -> dict[str, dict]:
        """Per router to train, the given hyper-parameters it takes."""
        given = {key: value for key, value in self.hyper.items() if value is not None}
        return {name: {k: v for k, v in given.items() if k in accepted_params(name)} for name in self.trained_routers()}

    def unused_params(self) -> list[Unused]:
        """Each given hyper-parameter that a router to train does not take (it is ignored for that router)."""
        routers = self.trained_routers()
        unused = []
        for param in (key for key, value in self.hyper.items() if value is not None):
            takes = tuple(name for name in routers if param in accepted_params(name))
            ignored = tuple(name for name in routers if name not in takes)
            if ignored:
                unused.append(Unused(param, ignored, takes))
        return unused
