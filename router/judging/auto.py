"""`auto` as a router like the others: `fit` selects on the training queries and deploys the pick.

Registered in ROUTERS by name (`add_auto`, named by the registry as a string), so the CLI, the spec
and the evaluator find it as they find `knn`. It differs in one declared way: `selects` is True (it
chooses its own policy), so the evaluator scores it as one `pick` row instead of router x policy.
`fit(queries, labels)` selects on a table of those queries alone; `fit_data(data)` on a RoutingData,
whose datasets and costs the per-dataset and cost-aware candidates need. The selection (`selection_`),
the deployed pick (`pick_`, lm_routing.judging.select.DeployedPick) and what its size-aware plan left
out (`plan_note_`, lm_routing.judging.limits.PlanNote, or None) are its learned state; saving writes the pick.
"""

from __future__ import annotations

import numpy as np

from lm_routing.data import RoutingData, RoutingInputError
from lm_routing.judging.crossfit import FitCache
from lm_routing.judging.limits import PlanNote, local_workers, plan_auto
from lm_routing.judging.select import AUTO, Objective, default_features, deploy, select
from lm_routing.learning.routers.base import Router, store_hyper_parameters
from lm_routing.registry import Registry


class AutoRouter(Router):
    """The candidate (best single model, per dataset, a light router x features x policy, a cascade) best on the
    training queries by a rule that corrects for the choice (lm_routing.judging.select), deployed.

    `features`: the only feature set its routers may use (None: every default one); `folds` and `seed`: its
    inner cross-validation; `within` (points 0-100): the cheapest choice within that many points of the best
    single model; `max_cost` (USD per query): the most accurate choice at most that dear. Accuracy when neither.
    """

    selects = True

    def __init__(self, features: str | None = None, folds: int = 5, seed: int = 0, within: float | None = None,
                 max_cost: float | None = None):
        store_hyper_parameters(self, locals())

    def objective(self) -> Objective:
        """What the selection maximises: accuracy, or cost within `within` points, or accuracy within `max_cost`."""
        if self.within is not None and self.max_cost is not None:
            raise RoutingInputError("auto takes one cost objective: «within» (points of the best single model) or "
                                    "«max_cost» (USD per query), not both")
        return Objective(within=None if self.within is None else self.within / 100, max_cost=self.max_cost)

    def check_ready(self) -> None:
        self.objective()  # both cost objectives: refused before any training

    def plan(self, n_train: int, n_test: int, n_models: int, workers: int
             ) -> tuple[list[str], list[str], PlanNote | None]:
        """(routers, feature sets, what was left out) its selection scores at this size with `workers` local
        processes (lm_routing.judging.limits.plan_auto)."""
        features = [self.features] if self.features else default_features()
        return plan_auto(n_train, n_test, n_models, features, self.folds, workers)

    def candidates(self, n_train: int, n_test: int, n_models: int, workers: int) -> list[str]:
        """The routers its selection fits at this size, once per feature set: what the up-front estimate counts."""
        routers, kinds, _ = self.plan(n_train, n_test, n_models, workers)
        return routers * len(kinds)

    def fit_data(self, data: RoutingData, cache: FitCache | None = None, n_test: int = 0) -> AutoRouter:
        """Select on every query of `data` (its labels, datasets and costs) and deploy the pick, fit on them all.
        `cache` shares routers and out-of-fold scores with other fits; `n_test` (queries it will route) sizes
        the candidate set (`plan`)."""
        objective, cache = self.objective(), cache or FitCache()
        routers, kinds, self.plan_note_ = self.plan(data.n_queries, n_test, data.n_models, local_workers())
        self.selection_ = select(data, self.folds, self.seed, features=kinds, routers=routers, cache=cache,
                                 objective=objective)
        self.pick_ = deploy(self.selection_, data, self.folds, self.seed, cache)
        self.n_models_ = data.n_models
        return self

    def _fit(self, queries: list[str], labels: np.ndarray) -> None:
        self.fit_data(_table(queries, labels))

    @property
    def uses_datasets(self) -> bool:
        return bool(getattr(self, "pick_", None) is not None and self.pick_.uses_datasets)

    def predict_proba(self, queries: list[str], datasets: list[str | None] | None = None) -> np.ndarray:
        super().predict_proba([])  # the unfitted error, as every router's
        return self.pick_.predict_proba(queries, datasets)

    def _predict(self, queries: list[str]) -> np.ndarray:
        return self.pick_.predict_proba(queries)

    def saved_form(self) -> Router:
        return self.pick_


def _table(queries: list[str], labels: np.ndarray) -> RoutingData:
    """The RoutingData of bare (queries, 0/1 labels): one dataset, no costs, models named m0, m1, ..."""
    n, m = labels.shape
    return RoutingData(query_ids=tuple(f"q{i}" for i in range(n)), queries=tuple(queries), datasets=("queries",) * n,
                       splits=("train",) * n, models=tuple(f"m{j}" for j in range(m)), labels=labels,
                       solve_rates=labels.copy(), answers=np.full((n, m), None, dtype=object),
                       latency=np.full((n, m), np.nan), latency_source=("unknown",) * m)


def add_auto(registry: Registry) -> None:
    """Add `auto` to ROUTERS (named by the registry as a string: learning never imports judging)."""
    registry.add(AUTO, AutoRouter)
