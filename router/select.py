"""`auto`: one deployable router, chosen on the training queries only.

Candidates: the best single model; the best single model per dataset (when the
stream holds several); and every light router x features x policy. Each is
scored by inner seeded k-fold cross-validation on the training queries: a
router's out-of-fold scores (shared with every policy, `router.crossfit`), a
fitted policy fit on the other folds' out-of-fold scores, a single model chosen
on the other folds. The pick is the simplest candidate whose inner-CV accuracy
is within one standard error of the best one (the standard error of the paired
per-query difference), simplest meaning best single, then per-dataset single,
then routers. Test labels are never read here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from router.crossfit import FitCache
from router.estimator_arrays import logistic_arrays, logistic_from_arrays, prefixed, unprefixed
from router.data import RoutingData, RoutingInputError
from router.features import MINILM_PACKAGE
from router.policies import POLICIES, Policy, make_policy
from router.routers.base import ROUTERS, Router, store_hyper_parameters

AUTO = "auto"
SINGLE, PER_DATASET, ROUTED = "single", "per-dataset", "router"
SIMPLICITY = {SINGLE: 0, PER_DATASET: 1, ROUTED: 2}  # the one-standard-error rule prefers lower


@dataclass(frozen=True)
class Candidate:
    """A deployable choice: the best single model, the best single model per dataset, or router x features x policy."""

    kind: str
    router: str | None = None
    features: str | None = None
    policy: str | None = None

    @property
    def name(self) -> str:
        if self.kind == ROUTED:
            return f"{self.router}[{self.features}]:{self.policy}"
        return "best single model" if self.kind == SINGLE else "best single model per dataset"


@dataclass(frozen=True)
class Scored:
    """A candidate and its inner-CV correctness (0/1 per training query)."""

    candidate: Candidate
    correct: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


@dataclass(frozen=True)
class Selection:
    """The pick, the runner-up (the most accurate other candidate) and every candidate, most accurate first."""

    pick: Scored
    runner_up: Scored | None
    ranked: tuple[Scored, ...]
    folds: int
    n_queries: int

    def note(self) -> str:
        runner = "" if self.runner_up is None else (
            f"; runner-up {self.runner_up.candidate.name} {100 * self.runner_up.accuracy:.2f}%")
        return (f"auto picked {self.pick.candidate.name}: inner-CV accuracy {100 * self.pick.accuracy:.2f}% "
                f"({self.folds}-fold on {self.n_queries} training queries, {len(self.ranked)} candidates{runner}; "
                "the simplest within one standard error of the best)")

    def to_json(self) -> dict:
        describe = lambda s: {"candidate": s.candidate.name, "kind": s.candidate.kind, "router": s.candidate.router,  # noqa: E731
                              "features": s.candidate.features, "policy": s.candidate.policy,
                              "inner_cv_accuracy": round(s.accuracy, 6)}
        return {"pick": describe(self.pick), "runner_up": None if self.runner_up is None else describe(self.runner_up),
                "folds": self.folds, "training_queries": self.n_queries,
                "candidates": [describe(s) for s in self.ranked]}


def light_routers() -> list[str]:
    """Registered routers that fit in seconds on CPU (class attribute `light = True`), in registry order."""
    return [name for name, cls in ROUTERS.items() if getattr(cls, "light", False)]


def default_features() -> list[str]:
    """TF-IDF, plus MiniLM embeddings when their offline package is installed."""
    return ["tfidf"] + (["minilm"] if importlib.util.find_spec(MINILM_PACKAGE) else [])


def _folds(data: RoutingData, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return data.kfold(min(folds, data.n_queries), seed)


def _best_model(labels: np.ndarray) -> int:
    return int(np.argmax(labels.mean(axis=0)))  # ties: earlier in pool order


def _per_dataset_models(labels: np.ndarray, datasets: np.ndarray) -> dict[str, int]:
    return {d: _best_model(labels[datasets == d]) for d in np.unique(datasets)}


def _single_correct(data: RoutingData, parts, per_dataset: bool) -> np.ndarray:
    """Inner-CV correctness of the best single model (per dataset), chosen on the other folds."""
    datasets, correct = np.asarray(data.datasets), np.zeros(data.n_queries)
    for fit, held in parts:
        best = _best_model(data.labels[fit])
        chosen = np.full(len(held), best)
        if per_dataset:
            models = _per_dataset_models(data.labels[fit], datasets[fit])
            chosen = np.array([models.get(d, best) for d in datasets[held]])
        correct[held] = data.labels[held, chosen]
    return correct


def _policy_choices(policy_name: str, scores: np.ndarray, labels: np.ndarray, parts, seed: int) -> np.ndarray:
    """Each query's choice; a fitted policy is fit on the other folds' out-of-fold scores."""
    policy = make_policy(policy_name, seed=seed)
    if not policy.needs_fit:
        return policy.choose(scores)
    chosen = np.zeros(len(scores), dtype=int)
    for fit, held in parts:
        chosen[held] = make_policy(policy_name, seed=seed).fit(scores[fit], labels[fit]).choose(scores[held])
    return chosen


def candidates_scored(train: RoutingData, routers: list[str], features: list[str], policies: list[str],
                      folds: int, seed: int, cache: FitCache) -> list[Scored]:
    """Every candidate's inner-CV correctness on `train` (router fits come from, and go to, `cache`)."""
    parts = _folds(train, folds, seed)
    rows = np.arange(train.n_queries)
    scored = [Scored(Candidate(SINGLE), _single_correct(train, parts, per_dataset=False))]
    if len(set(train.datasets)) > 1:
        scored.append(Scored(Candidate(PER_DATASET), _single_correct(train, parts, per_dataset=True)))
    for kind in features:
        for name in routers:
            oof = cache.out_of_fold(name, {"features": kind}, train, len(parts), seed)
            for policy in policies:
                chosen = _policy_choices(policy, oof, train.labels, parts, seed)
                scored.append(Scored(Candidate(ROUTED, name, kind, policy), train.labels[rows, chosen]))
    return scored


def one_se_pick(scored: list[Scored], rows: np.ndarray | None = None, z: float = 1.0) -> Scored:
    """The simplest candidate within `z` standard errors (of the paired per-query difference) of the most
    accurate one, judged on `rows` of their correctness (all when None)."""
    rows = np.arange(len(scored[0].correct)) if rows is None else rows
    accuracy = {id(s): s.correct[rows].mean() for s in scored}
    best, n = min(scored, key=lambda s: (-accuracy[id(s)], SIMPLICITY[s.candidate.kind])), len(rows)

    def close_enough(other: Scored) -> bool:
        gap = best.correct[rows] - other.correct[rows]
        se = gap.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
        return accuracy[id(best)] - accuracy[id(other)] <= z * se + 1e-12

    return min((s for s in scored if close_enough(s)), key=lambda s: (SIMPLICITY[s.candidate.kind], -accuracy[id(s)]))


def choose(scored: list[Scored], folds: int) -> Selection:
    """The simplest candidate within one standard error (of the paired difference) of the most accurate."""
    ranked = sorted(scored, key=lambda s: (-s.accuracy, SIMPLICITY[s.candidate.kind]))
    pick = one_se_pick(ranked)
    runner_up = next((s for s in ranked if s is not pick), None)
    return Selection(pick, runner_up, tuple(ranked), folds, len(ranked[0].correct))


def select(train: RoutingData, folds: int = 5, seed: int = 0, features: list[str] | None = None,
           routers: list[str] | None = None, policies: list[str] | None = None,
           cache: FitCache | None = None) -> Selection:
    """`auto`'s choice on the training queries `train` (labels of other queries are never passed in).

    Defaults: every light router, `default_features()`, every registered policy.
    """
    if train.n_queries < 2:
        raise RoutingInputError("auto needs at least 2 training queries to cross-validate its candidates")
    k = min(folds, train.n_queries)
    scored = candidates_scored(train, routers if routers is not None else light_routers(),
                               features or default_features(), policies or list(POLICIES), k, seed, cache or FitCache())
    return choose(scored, k)


def dataset_features():
    """Character 1-3 grams, case and line breaks kept: a benchmark's format ('\nA. ' choices) names it
    better than its words (on RouterDC GSM8K vs MMLU: 15 of 5532 test queries misnamed, 45 with word TF-IDF)."""
    from router.tfidf import QueryTfidf

    return QueryTfidf(analyzer="char", ngram_range=(1, 3), lowercase=False, sublinear_tf=True)


def _dataset_classifier():
    from sklearn.linear_model import LogisticRegression  # imported when fitted: keeps the CLI's start-up light

    return LogisticRegression(C=10.0, max_iter=3000)


class DeployedPick(Router):
    """`auto`'s pick, ready to serve: `predict_proba` rows whose argmax is the picked model.

    Best single model: the training solve rates (the same for every query). Per dataset: the
    solve rates of the query's dataset when the caller knows it (`predict_proba(queries, datasets)`:
    its table, its lm-eval task), as the inner CV scored it; else of the dataset a character n-gram
    classifier, trained on the training queries, assigns the query to. Router with argmax: the
    router's P(solve). Router with any other policy: 1 for the model the fitted policy chooses,
    0 elsewhere. Built by `deploy`, not by fit.
    """

    name = AUTO  # registered by router.routers.builtin

    def __init__(self, pick: str = "", kind: str = SINGLE, router: str | None = None, features: str | None = None,
                 policy: str | None = None, seed: int = 0, datasets: list[str] | None = None):
        store_hyper_parameters(self, locals())  # datasets: per dataset, the training datasets (rows of rates_)

    def _fit(self, queries, labels):
        raise NotImplementedError("a DeployedPick is built by router.select.deploy from a Selection")

    @property
    def uses_datasets(self) -> bool:
        return self.kind == PER_DATASET and bool(self.datasets)

    def predict_proba(self, queries: list[str], datasets: list[str | None] | None = None) -> np.ndarray:
        """A per-dataset pick serves a query of a known training dataset by that dataset's rates, not by
        the classifier (a name the training queries lack, or None, still goes to the classifier)."""
        if datasets is None or not self.uses_datasets or not hasattr(self, "rates_"):
            return super().predict_proba(queries)
        if len(datasets) != len(queries):
            raise ValueError(f"{len(datasets)} dataset names for {len(queries)} queries")
        index = {name: i for i, name in enumerate(self.datasets)}
        known = np.array([index.get(name, -1) if name is not None else -1 for name in datasets], dtype=int)
        scores = np.empty((len(queries), self.n_models_))
        scores[known >= 0] = self.rates_[known[known >= 0]]
        unknown = np.flatnonzero(known < 0)
        if unknown.size:  # only these are named by the classifier
            scores[unknown] = super().predict_proba([queries[i] for i in unknown])
        return scores

    def _predict(self, queries):
        if self.router_ is None:
            if self.dataset_classifier_ is None:
                return np.tile(self.rates_[0], (len(queries), 1))
            x = self.featurizer_.transform(queries)
            return self.rates_[self.dataset_classifier_.predict(x)]
        scores = self.router_.predict_proba(queries)
        if self.policy_ is None:
            return scores
        return np.eye(self.n_models_)[self.policy_.choose(scores)]

    def _state(self):
        """Solve rates (single, per dataset), the dataset classifier, or the picked router's and policy's
        arrays; the TF-IDF in `featurizer_` (the dataset classifier's, or the picked router's) is saved by the format."""
        if self.router_ is not None:
            return {**prefixed("router", self.router_._state()),
                    **prefixed("policy", self.policy_._state() if self.policy_ is not None else {})}
        arrays = {"rates": self.rates_}
        if self.dataset_classifier_ is not None:
            arrays.update(prefixed("datasets", logistic_arrays(self.dataset_classifier_)))
        return arrays

    def _restore(self, arrays):
        self.router_, self.policy_, self.dataset_classifier_ = None, None, None
        if self.kind == ROUTED:
            if self.router not in ROUTERS or self.policy not in POLICIES:
                raise ValueError(f"auto's pick names an unknown router {self.router!r} or policy {self.policy!r}")
            self.router_ = ROUTERS[self.router](features=self.features)
            self.router_.n_models_ = self.n_models_
            if getattr(self, "featurizer_", None) is not None:
                self.router_.featurizer_ = self.featurizer_
            self.router_._restore(unprefixed("router", arrays))
            if self.policy != "argmax":
                self.policy_ = make_policy(self.policy, seed=self.seed)
                self.policy_._restore(unprefixed("policy", arrays))
            return
        self.rates_ = arrays["rates"]
        if self.kind == PER_DATASET:
            self.dataset_classifier_ = logistic_from_arrays(unprefixed("datasets", arrays), _dataset_classifier)


def deploy(selection: Selection, train: RoutingData, folds: int, seed: int, cache: FitCache | None = None) -> DeployedPick:
    """The pick of `selection`, fit on every query of `train` (routers and their out-of-fold scores from `cache`)."""
    cache = cache or FitCache()
    candidate = selection.pick.candidate
    deployed = DeployedPick(candidate.name, candidate.kind, candidate.router, candidate.features, candidate.policy, seed,
                            sorted(set(train.datasets)) if candidate.kind == PER_DATASET else None)
    deployed.n_models_ = train.n_models
    deployed.router_, deployed.policy_, deployed.dataset_classifier_ = None, None, None
    if candidate.kind == SINGLE:
        deployed.rates_ = train.labels.mean(axis=0)[None, :]
    elif candidate.kind == PER_DATASET:
        datasets = np.asarray(train.datasets)
        names = deployed.datasets
        deployed.rates_ = np.stack([train.labels[datasets == d].mean(axis=0) for d in names])
        deployed.featurizer_ = dataset_features().fit(list(train.queries))
        target = np.searchsorted(names, datasets)
        deployed.dataset_classifier_ = _dataset_classifier().fit(
            deployed.featurizer_.transform(list(train.queries)), target)
    else:
        params = {"features": candidate.features}
        deployed.router_ = cache.fitted(candidate.router, params, train)
        if hasattr(deployed.router_, "featurizer_"):
            deployed.featurizer_ = deployed.router_.featurizer_  # saved once, by the format, for both
        policy: Policy = make_policy(candidate.policy, seed=seed)
        if candidate.policy != "argmax":
            oof = cache.out_of_fold(candidate.router, params, train, min(folds, train.n_queries), seed)
            deployed.policy_ = policy.fit(oof, train.labels)
    return deployed
