"""`auto`: one deployable router, chosen on the training queries only.

Candidates: the best single model; the best single model per dataset (when the
stream holds several); and every light router x features x policy. Each is
scored by inner seeded k-fold cross-validation on the training queries: a
router's out-of-fold scores (shared with every policy, `lm_routing.judging.crossfit`), a
fitted policy fit on the other folds' out-of-fold scores, a single model chosen
on the other folds.

The pick corrects for choosing among many candidates, in a fixed sequence: the
best single model per dataset replaces the best single model when its paired
inner-CV gain stays above 0 at a one-sided 95% bound (one test); then a router
replaces that reference only when its gain stays above 0 at a simultaneous 95%
lower bound over every router candidate (a max-t paired bootstrap over the
training queries, the multiple-testing correction of White's reality check and
Romano-Wolf), the highest bound winning; and the whole selection, cross-validated,
must not score below the best single model. Fewer queries or more candidates
widen the bound, so small training sets deploy the best single model. The expected accuracy printed
and saved is the whole selection cross-validated (each inner fold scored by the
pick made on the other folds), not the winner's inner-CV score, which the choice
biases upward; its standard error adds the folds' correlation (Nadeau-Bengio) and the
selection's instability (`_estimate`). Test labels are never read here.

A cost objective (`Objective`) adds single models, routers at cost weights and agreement cascades to the
candidates. `within` deploys the cheapest one whose loss to the best single model is shown, by the same
simultaneous bound, to be at most the tolerance: with a thousand training queries a candidate that
disagrees with that model on a few percent of them needs a clear margin, however cheap.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from lm_routing.deciding.cost import require_cost
from lm_routing.judging.crossfit import FitCache
from lm_routing.learning.estimator_arrays import logistic_arrays, logistic_from_arrays, prefixed, unprefixed
from lm_routing.data import RoutingData, RoutingInputError
from lm_routing.errors import Note
from lm_routing.registry import Registry
from lm_routing.learning.features import MINILM_PACKAGE
from lm_routing.judging.multiplicity import Bounds, simultaneous_bounds
from lm_routing.deciding.policies import POLICIES, Policy, make_policy
from lm_routing.learning.routers.base import ROUTERS, Router, store_hyper_parameters

AUTO = "auto"
SINGLE, PER_DATASET, MODEL, ROUTED, CASCADE = "single", "per-dataset", "model", "router", "cascade"
SIMPLICITY = {SINGLE: 0, MODEL: 0, PER_DATASET: 1, ROUTED: 2, CASCADE: 2}  # ties go to the simpler kind
LAMBDAS = 12  # cost weights tried per router when auto's objective involves cost


@dataclass(frozen=True)
class Objective:
    """What auto optimises. Default: accuracy. `within` (fraction 0-1): the cheapest candidate whose inner-CV
    accuracy is shown to be within `within` of the best single model's (its paired gain's simultaneous 95% lower
    bound over every cheaper candidate, `_within_allowed`, at or above -within: a luckily close candidate among
    dozens does not count), kept only when the rule itself, cross-validated (each inner fold scored by the pick
    made on the others), stays within `within` of the best single model too; else the best single model.
    `max_cost` (USD per query): the most accurate candidate whose inner-CV
    mean cost fits, judged against the most accurate affordable single model by the accuracy rule."""

    within: float | None = None
    max_cost: float | None = None

    @property
    def cost_aware(self) -> bool:
        return self.within is not None or self.max_cost is not None


ACCURACY = Objective()


@dataclass(frozen=True)
class Candidate:
    """A deployable choice: the best single model, the best single model per dataset, or router x features x policy."""

    kind: str
    router: str | None = None  # kind MODEL: the model's name
    features: str | None = None
    policy: str | None = None
    lam: float | None = None  # cost-aware routing: argmax P(solve) - lam * the model's mean cost (USD)
    tolerance: float | None = None  # agreement cascade: the tolerance (fraction) it was chosen at (`choose_cascade`)

    @property
    def name(self) -> str:
        if self.kind == ROUTED:
            return f"{self.router}[{self.features}]:" + (self.policy if self.lam is None else f"cost@{self.lam:.3g}")
        if self.kind == MODEL:
            return f"model {self.router}"
        if self.kind == CASCADE:
            return "agreement cascade" + (f" {self.router}" if self.router else "") + (
                f" (chosen within {100 * self.tolerance:g} points)" if self.tolerance is not None else "")
        return "best single model" if self.kind == SINGLE else "best single model per dataset"


@dataclass(frozen=True)
class Scored:
    """A candidate, its inner-CV correctness (0/1 per training query) and the cost of its choices (USD per
    training query; None when a model's cost is unknown)."""

    candidate: Candidate
    correct: np.ndarray
    cost: np.ndarray | None = None

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def mean_cost(self) -> float | None:
        return None if self.cost is None else float(self.cost.mean())


@dataclass(frozen=True)
class Estimate:
    """What a deployed pick is expected to score: accuracy (fraction 0-1) and its standard error, from `n`
    queries; its mean cost (USD per query) when known; and per dataset (name, accuracy, sampling se, n, shift):
    the standard error without the selection's instability, and that instability (fraction, signed; see
    `_estimate`), kept apart because mixing datasets adds shifts linearly and sampling errors in quadrature."""

    accuracy: float
    se: float
    n: int
    cost: float | None = None
    per_dataset: tuple[tuple[str, float, float, int, float], ...] = ()

    def interval(self, n_test: int | None = None, z: float = 1.96) -> tuple[float, float]:
        """95% interval (fractions): of the accuracy itself, or with `n_test`, of the accuracy measured on
        `n_test` new queries (the test set's own sampling noise added)."""
        var = self.se ** 2 + (self.accuracy * (1 - self.accuracy) / n_test if n_test else 0.0)
        half = z * np.sqrt(var)
        return max(0.0, self.accuracy - half), min(1.0, self.accuracy + half)

    def for_mix(self, counts: dict[str, int]) -> Estimate:
        """The estimate for a stream whose datasets come in `counts` (name -> queries; no labels needed): the
        per-dataset estimates weighted by it. Unchanged when a dataset of `counts` was not estimated."""
        known = {name: (acc, se, shift) for name, acc, se, _, shift in self.per_dataset}
        total = sum(counts.values())
        if not total or len(known) < 2 or not set(counts) <= set(known):
            return self
        weights = {name: n / total for name, n in counts.items()}
        sampling = sum((w * known[d][1]) ** 2 for d, w in weights.items())
        shift = sum(w * known[d][2] for d, w in weights.items())
        return replace(self, accuracy=float(sum(w * known[d][0] for d, w in weights.items())),
                       se=float(np.sqrt(sampling + shift ** 2)))


@dataclass(frozen=True)
class LabelWarning:
    """Something in the training labels that makes the verdict less trustworthy, seen without test labels.

    code 'few-queries': routing gains below `value` (fraction) cannot be told from luck with these queries
    and candidates, and that is a large part of what routing could add; 'one-dataset-lead': `model` leads every other model by `value` on `dataset`'s training
    queries only (a model tuned on those queries looks better there than it is)."""

    code: str
    value: float
    model: str | None = None
    dataset: str | None = None

    def to_json(self) -> dict:
        return {"code": self.code, "value": round(self.value, 6), "model": self.model, "dataset": self.dataset}

    def as_note(self) -> Note:
        """This warning as a note of the run's report, code 'label-warning-<code>' (its English: the CLI's)."""
        return Note(f"label-warning-{self.code}", value=round(self.value, 6), model=self.model, dataset=self.dataset)


@dataclass(frozen=True)
class Selection:
    """The pick, the runner-up (the most accurate other candidate), every candidate (most accurate first),
    what the pick is expected to score (the selection cross-validated), the smallest inner-CV gain over the
    best single model a candidate needed to be deployed (fraction), and warnings about the labels."""

    pick: Scored
    runner_up: Scored | None
    ranked: tuple[Scored, ...]
    folds: int
    n_queries: int
    expected: Estimate | None = None
    required_gain: float = float("nan")
    warnings: tuple[LabelWarning, ...] = ()
    objective: Objective = ACCURACY

    def expected_for(self, test_datasets: list[str] | tuple[str, ...] | None = None) -> Estimate | None:
        """The expected accuracy for a test stream with these datasets (their mix, never their labels)."""
        if self.expected is None or not test_datasets:
            return self.expected
        return self.expected.for_mix(Counter(test_datasets))

    def to_json(self, test_datasets: list[str] | tuple[str, ...] | None = None) -> dict:
        describe = lambda s: {"candidate": s.candidate.name, "kind": s.candidate.kind, "router": s.candidate.router,  # noqa: E731
                              "features": s.candidate.features, "policy": s.candidate.policy, "lam": s.candidate.lam,
                              "tolerance": s.candidate.tolerance,
                              "inner_cv_accuracy": round(s.accuracy, 6),
                              "inner_cv_cost": None if s.cost is None else round(s.mean_cost, 9)}
        expected, estimate = None, self.expected_for(test_datasets)
        if estimate is not None:
            n_test = len(test_datasets) if test_datasets else None
            expected = {"accuracy": round(estimate.accuracy, 6), "se": round(estimate.se, 6),
                        "cost_per_query": None if estimate.cost is None else round(estimate.cost, 9),
                        "interval": [round(v, 6) for v in estimate.interval()],
                        "test_interval": None if not n_test else [round(v, 6) for v in estimate.interval(n_test)]}
        return {"pick": describe(self.pick), "runner_up": None if self.runner_up is None else describe(self.runner_up),
                "folds": self.folds, "training_queries": self.n_queries, "expected": expected,
                "required_gain": None if np.isnan(self.required_gain) else round(self.required_gain, 6),
                "warnings": [w.to_json() for w in self.warnings],
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


def _single_choices(data: RoutingData, parts, per_dataset: bool) -> np.ndarray:
    """Inner-CV choices of the best single model (per dataset), chosen on the other folds."""
    datasets, chosen = np.asarray(data.datasets), np.zeros(data.n_queries, dtype=int)
    for fit, held in parts:
        best = _best_model(data.labels[fit])
        chosen[held] = best
        if per_dataset:
            models = _per_dataset_models(data.labels[fit], datasets[fit])
            chosen[held] = [models.get(d, best) for d in datasets[held]]
    return chosen


def _scored(candidate: Candidate, data: RoutingData, chosen: np.ndarray) -> Scored:
    rows, cost = np.arange(data.n_queries), data.cost if data.cost_known else None
    return Scored(candidate, data.labels[rows, chosen], None if cost is None else cost[rows, chosen])


def cost_lambdas(model_cost: np.ndarray, count: int = LAMBDAS) -> np.ndarray:
    """Cost weights (per USD) from 'a model's P(solve) barely matters' to 'the cheapest model always wins'."""
    spread = max(float(np.ptp(model_cost)), 1e-12)
    return np.geomspace(1e-2 / spread, 1.0 / spread, count)


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
                      folds: int, seed: int, cache: FitCache, objective: Objective = ACCURACY) -> list[Scored]:
    """Every candidate's inner-CV correctness (and cost, when known) on `train` (router fits come from, and go
    to, `cache`). A cost-aware objective adds every single model and each router at `cost_lambdas`."""
    parts = _folds(train, folds, seed)
    scored = [_scored(Candidate(SINGLE), train, _single_choices(train, parts, per_dataset=False))]
    if len(set(train.datasets)) > 1:
        scored.append(_scored(Candidate(PER_DATASET), train, _single_choices(train, parts, per_dataset=True)))
    cost = train.cost if objective.cost_aware and train.cost_known else None
    if cost is not None:
        scored += [_scored(Candidate(MODEL, model), train, np.full(train.n_queries, j)) for j, model in enumerate(train.models)]
        scored += _cascade_scored(train, parts, objective)
    for kind in features:
        for name in routers:
            oof = cache.out_of_fold(name, {"features": kind}, train, len(parts), seed)
            for policy in policies:
                scored.append(_scored(Candidate(ROUTED, name, kind, policy), train,
                                      _policy_choices(policy, oof, train.labels, parts, seed)))
            if cost is not None:
                model_cost = cost.mean(axis=0)
                scored += [_scored(Candidate(ROUTED, name, kind, "argmax", float(lam)), train,
                                   np.argmax(oof - lam * model_cost, axis=1)) for lam in cost_lambdas(model_cost)]
    return scored


CASCADE_SHARES = (1.0, 0.5, 0.25, 0.0)  # `within`: agreement cascades chosen at these shares of the tolerance


def choose_cascade(train: RoutingData, objective: Objective, tolerance: float | None = None):
    """The agreement cascade (lm_routing.deciding.cascade) `objective` asks for, chosen on `train` alone: the cheapest within
    `tolerance` (default: `within`) of the best single model, or the most accurate within `max_cost`; None
    when there is none (no answers to compare, code, too few cheaper models, nothing affordable)."""
    from lm_routing.deciding.cascade import choose_agreement_cascade

    try:
        return choose_agreement_cascade(train, tolerance=objective.within if tolerance is None else tolerance,
                                        budget=objective.max_cost).cascade
    except RoutingInputError:
        return None


def _cascade_scored(train: RoutingData, parts, objective: Objective) -> list[Scored]:
    """Agreement cascades chosen on the other folds, per fold: correctness and USD of every member run. Under
    `within`, one candidate per share of the tolerance (CASCADE_SHARES: a stricter cascade escalates more, costs
    more and strays less from the best single model, which a bound on its gain can then confirm); under
    `max_cost`, one. None for a tolerance where some fold has no cascade to choose; duplicates dropped."""
    from lm_routing.deciding.cascade import agreement_choices

    tolerances = [None] if objective.within is None else sorted({objective.within * share for share in CASCADE_SHARES}, reverse=True)
    scored = []
    for tolerance in tolerances:
        correct, cost = np.zeros(train.n_queries), np.zeros(train.n_queries)
        for fit, held in parts:
            cascade = choose_cascade(train.take(fit), objective, tolerance)
            if cascade is None:
                break
            correct[held], cost[held], _ = agreement_choices(train.take(held), cascade)
        else:
            if not any(np.array_equal(correct, s.correct) and np.array_equal(cost, s.cost) for s in scored):
                scored.append(Scored(Candidate(CASCADE, tolerance=tolerance), correct, cost))
    return scored


def one_se_pick(scored: list[Scored], rows: np.ndarray | None = None, z: float = 1.0) -> Scored:
    """The rule auto shipped before the selection correction (kept for benchmarks/auto_resplits.py): the
    simplest candidate within `z` standard errors (of the paired per-query difference) of the most accurate
    one, judged on `rows` of their correctness (all when None)."""
    rows = np.arange(len(scored[0].correct)) if rows is None else rows
    accuracy = {id(s): s.correct[rows].mean() for s in scored}
    best, n = min(scored, key=lambda s: (-accuracy[id(s)], SIMPLICITY[s.candidate.kind])), len(rows)

    def close_enough(other: Scored) -> bool:
        gap = best.correct[rows] - other.correct[rows]
        se = gap.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
        return accuracy[id(best)] - accuracy[id(other)] <= z * se + 1e-12

    return min((s for s in scored if close_enough(s)), key=lambda s: (SIMPLICITY[s.candidate.kind], -accuracy[id(s)]))


def _cost_pool(scored: list[Scored], rows: np.ndarray, objective: Objective) -> tuple[list[Scored], Scored]:
    """The candidates `objective` allows and the reference the others are judged against: the best single
    model, or under `max_cost` the most accurate affordable single model (the cheapest affordable candidate
    when no single model fits)."""
    reference = next(s for s in scored if s.candidate.kind == SINGLE)
    if not objective.cost_aware:
        return scored, reference
    if any(s.cost is None for s in scored):
        raise RoutingInputError("auto's cost objective needs every model's cost per query: give prices, or a table "
                                "with a cost per (query, model)")
    if objective.max_cost is None:
        return scored, reference
    pool = [s for s in scored if s.cost[rows].mean() <= objective.max_cost + 1e-12]
    if not pool:
        cheapest = min(s.cost[rows].mean() for s in scored)
        raise RoutingInputError(f"auto's budget {objective.max_cost:g} USD per query is below its cheapest candidate "
                                f"({cheapest:.3g} USD per training query); raise it")
    singles = [s for s in pool if s.candidate.kind in (SINGLE, MODEL)]
    if singles:
        return pool, max(singles, key=lambda s: (s.correct[rows].mean(), -SIMPLICITY[s.candidate.kind]))
    return pool, min(pool, key=lambda s: s.cost[rows].mean())


def contest(scored: list[Scored], rows: np.ndarray | None = None, seed: int = 0,
            objective: Objective = ACCURACY) -> tuple[Scored, Bounds | None]:
    """auto's rule on `rows` of the candidates' correctness (all when None). Each candidate's paired gain over
    the reference (the best single model; see `_cost_pool` for a budget) gets a simultaneous lower bound
    (`lm_routing.judging.multiplicity`). Accuracy (and a budget), in a fixed sequence: the best single model per dataset
    first, alone (one test, no share of the correction), becoming the reference when its bound is above 0;
    then the candidate (router, model) with the highest simultaneous bound over the reference, when above 0;
    else the reference. `within`: of the candidates cheaper than the model the reference deploys (the most
    accurate on `rows`; its inner-CV cost mixes the models the folds chose), the cheapest whose gain is shown to be
    >= -within at a simultaneous 95% bound (`_within_allowed`; `verdict` also cross-validates the rule), else the
    reference. Returns the pick and the bounds (None when there is nothing to contest)."""
    rows = np.arange(len(scored[0].correct)) if rows is None else rows
    pool, reference = _cost_pool(scored, rows, objective)
    others = [s for s in pool if s is not reference]
    if not others or len(rows) < 2:
        return reference, None
    gains = lambda group, ref: np.stack([s.correct[rows] - ref.correct[rows] for s in group], axis=1)  # noqa: E731
    if objective.within is not None:
        models = [s for s in pool if s.candidate.kind == MODEL]  # the reference deploys the best of them on `rows`
        deployed = max(models, key=lambda s: s.correct[rows].mean()) if models else reference  # ties: pool order
        cheaper = [s for s in others if s.cost[rows].mean() < deployed.cost[rows].mean()]
        allowed, bounds = _within_allowed(gains(cheaper, reference) if cheaper else None, objective.within, seed)
        if not allowed:
            return reference, bounds
        return min((cheaper[i] for i in allowed), key=lambda s: (s.cost[rows].mean(), -s.correct[rows].mean())), bounds
    per_dataset = [s for s in others if s.candidate.kind == PER_DATASET]
    if per_dataset and simultaneous_bounds(gains(per_dataset, reference), seed=seed).lower[0] > 1e-12:
        reference = per_dataset[0]  # tested first, alone: the simpler step needs no share of the correction
    others = [s for s in others if s.candidate.kind != PER_DATASET]
    if not others:
        return reference, None
    bounds = simultaneous_bounds(gains(others, reference), seed=seed)
    lower = bounds.lower
    best = min(range(len(others)), key=lambda i: (-lower[i], SIMPLICITY[others[i].candidate.kind]))
    return (others[best] if lower[best] > 1e-12 else reference), bounds


def _within_allowed(gains: np.ndarray | None, within: float, seed: int) -> tuple[list[int], Bounds | None]:
    """The columns of `gains` (per-query gain over the reference, one column per candidate cheaper than it) whose
    gain is shown to be >= -`within`: a simultaneous 95% lower bound at or above it, stepped down as Romano and
    Wolf do (columns confirmed at one step leave the family, and the rest are bounded again with the smaller
    critical value the smaller family gives), so the family-wise chance of counting any candidate worse than
    -`within` as within it stays at most 5%, however many candidates are tried. Returns the confirmed columns
    and the first step's bounds."""
    if gains is None:
        return [], None
    remaining, allowed, first = np.arange(gains.shape[1]), [], None
    while remaining.size:
        bounds = simultaneous_bounds(gains[:, remaining], seed=seed)
        first = first or bounds
        confirmed = bounds.lower >= -within - 1e-12
        if not confirmed.any():
            break
        allowed += remaining[confirmed].tolist()
        remaining = remaining[~confirmed]
    return allowed, first


def _mean_and_se(values: np.ndarray, refit: float = 1.0) -> tuple[float, float]:
    """Mean of `values` and its standard error, the per-query variance multiplied by `refit` (`_refit_factor`)."""
    return float(values.mean()), float(np.sqrt(refit) * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("inf")


def _refit_factor(parts) -> float:
    """How much more the mean of k-fold out-of-fold scores varies than if its queries were independent: Nadeau
    and Bengio's corrected resampled variance (Machine Learning 52, 2003), (1/k + n_held/n_fit) x the variance
    of one fold's score instead of 1/k x it, i.e. 1 + k n_held/n_fit (2.25 at 5 folds) times the naive
    per-query variance. The k models (and the k picks the selection makes) are fit on training sets that
    share (k-2)/(k-1) of their queries, so their errors are correlated; the naive standard error ignores that.
    1 without folds (scores that were not fit on other folds)."""
    if not parts or len(parts) < 2:
        return 1.0
    return 1.0 + len(parts) * float(np.mean([len(held) / max(len(fit), 1) for fit, held in parts]))


def selection_estimate(scored: list[Scored], parts, seed: int = 0, objective: Objective = ACCURACY,
                       datasets: tuple[str, ...] | None = None, deployed: Scored | None = None) -> Estimate:
    """The whole selection cross-validated: each fold's queries scored by the pick `contest` makes on the other
    folds (`parts`: the inner folds the candidates were scored on). Unlike the winner's inner-CV accuracy, no
    query helps choose the candidate it scores. The cost is that of the same picks (None when unknown); with
    each query's dataset, the estimate per dataset too (`Estimate.for_mix` reweights it to a test stream).
    Its standard error (`_estimate`) counts the folds' correlation and, given the `deployed` pick, how far
    the picks made without each fold stray from it."""
    correct, cost = _cross_validated(scored, parts, seed, objective)
    return _estimate(correct, cost, datasets, parts, None if deployed is None else deployed.correct)


def _cross_validated(scored: list[Scored], parts, seed: int, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the correctness and cost of the pick `contest` makes without its fold."""
    n = len(scored[0].correct)
    correct, cost = np.zeros(n), np.zeros(n)
    for fit, held in parts:
        pick = contest(scored, fit, seed, objective)[0]
        correct[held] = pick.correct[held]
        cost[held] = np.nan if pick.cost is None else pick.cost[held]
    return correct, cost


def _estimate(correct: np.ndarray, cost: np.ndarray | None, datasets: tuple[str, ...] | None, parts=None,
              deployed: np.ndarray | None = None) -> Estimate:
    """The expected accuracy from the cross-validated correctness `correct` (0/1 per training query) and its
    standard error, the square root of two terms (fractions squared):

    - sampling: the per-query variance / n, times `_refit_factor(parts)` (the k folds' fits are correlated);
    - instability: the square of the shift, the mean of `correct - deployed` (the deployed pick's own inner-CV
      correctness per query). The estimate scores the picks made without each fold, a mix of candidates when
      the selection is unstable, while the test scores the one deployed; the shift measures, on the same
      queries, how far that mix is from it (0 when every fold picks the deployed candidate). It is not
      subtracted: on training queries the deployed pick's score carries the selection's optimism, so the
      shift is an error of unknown sign and this size, counted as such (mean squared error = variance +
      bias squared).
    """
    n = len(correct)
    cost = np.full(n, np.nan) if cost is None else cost
    names = np.asarray(datasets if datasets is not None else [""] * n)
    shift = np.zeros(n) if deployed is None else correct - deployed
    refit = _refit_factor(parts)

    def summary(rows: np.ndarray) -> tuple[float, float, int, float]:  # accuracy, sampling se, n, shift
        return (*_mean_and_se(correct[rows], refit), int(rows.sum()), float(shift[rows].mean()))

    per_dataset = tuple((str(d), *summary(names == d)) for d in np.unique(names))
    accuracy, sampling, _, bias = summary(np.ones(n, dtype=bool))
    return Estimate(accuracy, float(np.sqrt(sampling ** 2 + bias ** 2)), n,
                    None if np.isnan(cost).any() else float(cost.mean()), per_dataset)


LEAD = 0.05  # a model this far ahead (fraction) on one dataset's training queries, and behind on the others
FEW_QUERIES = 0.02  # a routing gain this small (fraction) always deserves to be confirmable
HEADROOM_SHARE = 1 / 3  # ... and so does a third of what perfect routing would add on the training queries


def label_warnings(train: RoutingData, bounds: Bounds | None) -> tuple[LabelWarning, ...]:
    """What can be seen in the training labels alone: too few queries for the candidates to be told apart (the
    gain a router needs to be deployed exceeds both `FEW_QUERIES` and `HEADROOM_SHARE` of the oracle's lead over
    the best single model), and a model far ahead (`LEAD`) on one dataset's training queries while no better
    than the others elsewhere."""
    warnings = []
    headroom = float(train.labels.max(axis=1).mean() - train.labels.mean(axis=0).max()) if train.n_queries else 0.0
    if bounds is not None and bounds.required_gain > max(FEW_QUERIES, HEADROOM_SHARE * headroom):
        warnings.append(LabelWarning("few-queries", bounds.required_gain))
    datasets = np.asarray(train.datasets)
    names = sorted(set(train.datasets))
    if len(names) > 1 and train.n_models > 1:
        rates = np.stack([train.labels[datasets == d].mean(axis=0) for d in names])  # (datasets, models)
        for d, name in enumerate(names):
            order = np.argsort(-rates[d], kind="stable")
            leader, lead = int(order[0]), float(rates[d, order[0]] - rates[d, order[1]])
            if lead >= LEAD and all(np.argmax(rates[o]) != leader for o in range(len(names)) if o != d):
                warnings.append(LabelWarning("one-dataset-lead", lead, train.models[leader], name))
    return tuple(warnings)


def _within_cross_validated(ranked: list[Scored], parts, seed: int, objective: Objective, datasets):
    """`within`'s correction: the rule at the tolerance asked for, else at half, a quarter, then 0, the first
    whose pick made without each fold stays within `within` of the best single model out of fold; else the
    best single model. Returns the pick, its bounds and the expected accuracy of that rule, cross-validated."""
    single = next(s for s in ranked if s.candidate.kind == SINGLE)
    for share in (1.0, 0.5, 0.25, 0.0):
        tried = Objective(within=objective.within * share)
        pick, bounds = contest(ranked, seed=seed, objective=tried)
        expected = selection_estimate(ranked, parts, seed, tried, datasets, pick)
        if expected.accuracy >= single.accuracy - objective.within - 1e-12:
            return pick, bounds, expected
    return single, None, _estimate(single.correct, single.cost, datasets, parts)


def verdict(scored: list[Scored], folds: int, parts=None, seed: int = 0, train: RoutingData | None = None,
           objective: Objective = ACCURACY) -> Selection:
    """auto's pick among `scored` (`contest`), the expected accuracy of the whole selection (`selection_estimate`,
    when the inner folds `parts` are given) and the warnings `label_warnings` finds in `train`."""
    ranked = sorted(scored, key=lambda s: (-s.accuracy, SIMPLICITY[s.candidate.kind]))
    datasets = train.datasets if train is not None else None
    if objective.within is not None and parts is not None:
        pick, bounds, expected = _within_cross_validated(ranked, parts, seed, objective, datasets)
    else:
        pick, bounds = contest(ranked, seed=seed, objective=objective)
        expected = None if parts is None else selection_estimate(ranked, parts, seed, objective, datasets, pick)
        reference = next(s for s in ranked if s.candidate.kind == SINGLE)
        if expected is not None and pick is not reference and objective.max_cost is None \
                and expected.accuracy < reference.accuracy - 1e-12:  # the selection loses out of fold: do not trust it
            pick, expected = reference, _estimate(reference.correct, reference.cost, datasets, parts)
    runner_up = next((s for s in ranked if s is not pick), None)
    warnings = label_warnings(train, bounds if objective.within is None else None) if train is not None else ()
    required = bounds.required_gain if bounds is not None else float("nan")
    return Selection(pick, runner_up, tuple(ranked), folds, len(ranked[0].correct), expected, required, warnings,
                     objective)


def select(train: RoutingData, folds: int = 5, seed: int = 0, features: list[str] | None = None,
           routers: list[str] | None = None, policies: list[str] | None = None,
           cache: FitCache | None = None, objective: Objective = ACCURACY) -> Selection:
    """`auto`'s choice on the training queries `train` (labels of other queries are never passed in).

    Defaults: every light router, `default_features()`, every registered policy; accuracy as the objective.
    """
    if train.n_queries < 2:
        raise RoutingInputError("auto needs at least 2 training queries to cross-validate its candidates")
    if objective.cost_aware:
        require_cost(train, "auto's cost objective")
    k = min(folds, train.n_queries)
    scored = candidates_scored(train, routers if routers is not None else light_routers(),
                               features or default_features(), policies or list(POLICIES), k, seed, cache or FitCache(),
                               objective)
    return verdict(scored, k, _folds(train, k, seed), seed, train, objective)


def dataset_features():
    """Character 1-3 grams, case and line breaks kept: a benchmark's format ('\nA. ' choices) names it
    better than its words (on RouterDC GSM8K vs MMLU: 15 of 5532 test queries misnamed, 45 with word TF-IDF)."""
    from lm_routing.learning.tfidf import QueryTfidf

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
    router's P(solve). Router with any other policy, or with a cost weight `lam`: 1 for the model
    the fitted policy (or argmax P(solve) - lam x the model's mean training cost) chooses, 0
    elsewhere. One model (a cost objective's pick): 1 for it. Built by `deploy`, not by fit.
    `expected_accuracy` (fraction), `expected_se` and `expected_cost` (USD per query) are what the
    selection, cross-validated, expects of the pick (None for folders saved before they were kept).
    """

    name = AUTO  # registered in SAVED_FORMS by add_saved_forms (auto the router: lm_routing.judging.auto)

    def __init__(self, pick: str = "", kind: str = SINGLE, router: str | None = None, features: str | None = None,
                 policy: str | None = None, seed: int = 0, datasets: list[str] | None = None, lam: float | None = None,
                 expected_accuracy: float | None = None, expected_se: float | None = None,
                 expected_cost: float | None = None, stages: list[list[str]] | None = None, share: float | None = None):
        store_hyper_parameters(self, locals())  # datasets: per dataset, the training datasets (rows of rates_)

    def _fit(self, queries, labels):
        raise NotImplementedError("a DeployedPick is built by lm_routing.judging.select.deploy from a Selection")

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
        if self.kind == CASCADE:
            raise RoutingInputError(f"auto's pick is the agreement cascade {self.pick}: it needs its members' answers "
                                    "to decide, which a query's text alone does not give; routing-eval replays it on "
                                    "logs or tables with answers")
        if self.router_ is None:
            if self.dataset_classifier_ is None:
                return np.tile(self.rates_[0], (len(queries), 1))
            x = self.featurizer_.transform(queries)
            return self.rates_[self.dataset_classifier_.predict(x)]
        scores = self.router_.predict_proba(queries)
        if self.lam is not None:
            return np.eye(self.n_models_)[np.argmax(scores - self.lam * self.model_cost_, axis=1)]
        if self.policy_ is None:
            return scores
        return np.eye(self.n_models_)[self.policy_.choose(scores)]

    def _state(self):
        """Solve rates (single, per dataset), the dataset classifier, or the picked router's and policy's
        arrays; the TF-IDF in `featurizer_` (the dataset classifier's, or the picked router's) is saved by the format."""
        if self.router_ is not None:
            return {**prefixed("router", self.router_._state()),
                    **prefixed("policy", self.policy_._state() if self.policy_ is not None else {}),
                    **({"model_cost": self.model_cost_} if self.lam is not None else {})}
        if self.kind == CASCADE:
            return {}
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
            if self.lam is not None:
                self.model_cost_ = arrays["model_cost"]
            if self.policy != "argmax":
                self.policy_ = make_policy(self.policy, seed=self.seed)
                self.policy_._restore(unprefixed("policy", arrays))
            return
        if self.kind == CASCADE:
            return
        self.rates_ = arrays["rates"]
        if self.kind == PER_DATASET:
            self.dataset_classifier_ = logistic_from_arrays(unprefixed("datasets", arrays), _dataset_classifier)


def deploy(selection: Selection, train: RoutingData, folds: int, seed: int, cache: FitCache | None = None) -> DeployedPick:
    """The pick of `selection`, fit on every query of `train` (routers and their out-of-fold scores from `cache`)."""
    cache = cache or FitCache()
    candidate, expected = selection.pick.candidate, selection.expected
    deployed = DeployedPick(candidate.name, candidate.kind, candidate.router, candidate.features, candidate.policy, seed,
                            sorted(set(train.datasets)) if candidate.kind == PER_DATASET else None, candidate.lam,
                            *((expected.accuracy, expected.se, expected.cost) if expected is not None else (None, None, None)))
    deployed.n_models_ = train.n_models
    deployed.router_, deployed.policy_, deployed.dataset_classifier_ = None, None, None
    if candidate.kind == CASCADE:
        cascade = choose_cascade(train, selection.objective, candidate.tolerance)
        deployed.stages = [[train.models[j] for j in stage] for stage in cascade.stages]
        deployed.share = float(cascade.share)
        deployed.pick = f"{cascade.name(train)}@{cascade.share:.3g}"
    elif candidate.kind == SINGLE:
        deployed.rates_ = train.labels.mean(axis=0)[None, :]
    elif candidate.kind == MODEL:
        deployed.rates_ = np.eye(train.n_models)[[train.models.index(candidate.router)]]
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
        if candidate.lam is not None:
            deployed.model_cost_ = train.model_cost
        elif candidate.policy != "argmax":
            policy: Policy = make_policy(candidate.policy, seed=seed)
            oof = cache.out_of_fold(candidate.router, params, train, min(folds, train.n_queries), seed)
            deployed.policy_ = policy.fit(oof, train.labels)
    return deployed


def add_saved_forms(registry: Registry) -> None:
    """Add the routers `load_router` rebuilds though nobody trains them by name (SAVED_FORMS): auto's pick.
    Named by the registry as a string, so learning never imports judging."""
    registry.add(DeployedPick.name, DeployedPick)
