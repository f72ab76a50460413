"""Evaluation: the routing paper's baselines and router x policy rows over RoutingData.

Protocol: with a train split and a test split, routers are fit on train and
scored on test. With test queries only, seeded k-fold cross-fitting: each
fold is scored by a router fit on the other folds. Policies that need fitting
(prediction) are fit on out-of-fold router scores of the training queries.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm.auto import tqdm

from lm_routing_tasks.scoring import INVALID, majority_vote
from lm_routing.deciding.cascade import (
    DEFAULT_THRESHOLD, AgreementCascade, agreement_cascade, agreement_choices, cascade_choices, chain_indices, chain_name,
    choose_agreement_cascade, choose_threshold, distinct_shares, evaluate_agreement,
)
from lm_routing.deciding.cost import cost_aware_choices, lambda_for_budget, price_matrix, require_cost
from lm_routing.judging.crossfit import FitCache
from lm_routing.data import TEST, TRAIN, RoutingData, RoutingInputError
from lm_routing.errors import Note, check_known, finite_scores, latency_known, require_latency
from lm_routing.judging.metrics import expected_calibration_error, paired_test, proportions_differ
from lm_routing.deciding.policies import make_policy, policies_to_run
from lm_routing.learning.routers import ROUTERS, Router, make_router
from lm_routing.judging.rows import CASCADE, MODEL, ROUTER, UPPER_BOUND, Row, make_row  # noqa: F401  (Row: callers' name for it)
from lm_routing.judging.select import CASCADE as CASCADE_PICK, DeployedPick, Selection
from lm_routing.judging.spec import EvalSpec

RANDOM_DRAWS = 1000
PROTOCOLS = ("auto", "train-test", "test-kfold")


@dataclass
class Routed:
    """One router x policy on the evaluated queries: its choice per query."""

    router: str
    policy: str
    scores: np.ndarray
    choices: np.ndarray


@dataclass
class Evaluation:
    data: RoutingData  # the evaluated (test) queries
    protocol: str
    rows: list[Row]
    routed: list[Routed]
    notes: list[str] = field(default_factory=list)  # lm_routing.errors.Note where typed (a code and its fields)
    fitted: dict[str, Router] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)  # router -> ECE of its P(solve) on test
    selections: list[Selection] = field(default_factory=list)  # auto's pick, one per outer fold

    def best_single(self) -> Row:
        return max((r for r in self.rows if r.kind == MODEL), key=lambda r: r.accuracy)


def _known_mean(seconds: np.ndarray) -> float | None:
    """Mean of latencies (s/query), or None when any of them is unknown (NaN)."""
    return float(seconds.mean()) if latency_known(seconds) else None


def _mean_latency(data: RoutingData, choices: np.ndarray) -> float | None:
    return _known_mean(data.latency[np.arange(data.n_queries), choices])


def _share(data: RoutingData, choices: np.ndarray) -> dict[str, float]:
    counts = np.bincount(choices, minlength=data.n_models) / max(len(choices), 1)
    return {m: float(c) for m, c in zip(data.models, counts) if c > 0}


def choice_row(kind: str, data: RoutingData, choices: np.ndarray, **names) -> Row:
    """Accuracy, latency and cost (USD) of sending query i to model choices[i]; `names` as lm_routing.judging.rows.make_row takes them."""
    rows = np.arange(data.n_queries)
    correct = data.labels[rows, choices]
    return make_row(kind, correct, _mean_latency(data, choices), _share(data, choices),
                    cost=_known_mean(data.cost[rows, choices]), **names)


def oracle_choices(data: RoutingData, cheapest: bool = False) -> np.ndarray:
    """First model in pool order that solves each query (or the cheapest that does).

    A query no model solves goes to the first model (or the cheapest one).
    Cheapest: by USD per query when every cost is known, else by latency.
    """
    solved = data.labels > 0
    if not cheapest:
        return np.argmax(solved, axis=1)  # first True in pool order; model 0 when none
    cost = data.cost if data.cost_known else require_latency(data.latency, "the cheapest-correct oracle")
    cheapest_solver = np.argmin(np.where(solved, cost, np.inf), axis=1)
    return np.where(solved.any(axis=1), cheapest_solver, np.argmin(cost, axis=1))


def random_row(data: RoutingData, seed: int, draws: int = RANDOM_DRAWS) -> Row:
    """Uniform random model per query, averaged over `draws` seeded draws."""
    picks = np.random.default_rng(seed).integers(0, data.n_models, size=(draws, data.n_queries))
    per_query = data.labels[np.arange(data.n_queries), picks].mean(axis=0)
    latency = _known_mean(data.latency[np.arange(data.n_queries), picks]) if latency_known(data.latency) else None
    return make_row("random", per_query, latency, cost=_known_mean(data.cost[np.arange(data.n_queries), picks]))


def all_models_row(data: RoutingData) -> Row:
    """Every model answers; the most common majority answer wins (ties: pool order).

    The voted answer is right when some model that solved the query gave it.
    Without answers (score tables) the vote is over labels: right when at
    least half the models solved the query. Latency is the sum over models.
    """
    if any(a is not None for a in data.answers.flat):
        correct = [_vote_is_right(answers, labels) for answers, labels in zip(data.answers, data.labels)]
    else:
        correct = list(data.labels.mean(axis=1) >= 0.5)
    latency = _known_mean(data.latency.sum(axis=1))  # NaN in any model makes the sum unknown
    return make_row("all", np.asarray(correct, dtype=float), latency, cost=_known_mean(data.cost.sum(axis=1)))


def _vote_is_right(answers: np.ndarray, labels: np.ndarray) -> bool:
    winner = majority_vote(list(answers))  # the models' answers in pool order, voted as a model's own samples are
    return winner is not None and any(a == winner and y > 0 for a, y in zip(answers, labels))


def upper_bound_row(data: RoutingData, scores: np.ndarray, router: str) -> Row:
    """Classifier upper bound: the first model predicted solvable (P >= 0.5) that truly is.

    A query with no such model goes to the router's top-scored model.
    """
    good = (scores >= 0.5) & (data.labels > 0)
    choices = np.where(good.any(axis=1), np.argmax(good, axis=1), np.argmax(scores, axis=1))
    return choice_row(UPPER_BOUND, data, choices, router=router)


def baseline_rows(data: RoutingData, seed: int) -> list[Row]:
    """Oracle (both variants), random, all-models vote, then each single model."""
    rows = [choice_row("oracle", data, oracle_choices(data))]
    if latency_known(data.latency) or data.cost_known:
        rows.append(choice_row("oracle-cheapest", data, oracle_choices(data, cheapest=True)))
    rows += [random_row(data, seed), all_models_row(data)]
    rows += [choice_row(MODEL, data, np.full(data.n_queries, j), model=m) for j, m in enumerate(data.models)]
    return rows


def cascade_row(data: RoutingData, chain: list[int], threshold: float) -> Row:
    """The cascade over `chain` (pool positions) at `threshold`: accuracy of the accepted answers,
    latency = mean seconds spent per query (every member run), share = whose answer was accepted."""
    accepted, seconds = cascade_choices(data, chain, threshold)
    correct = data.labels[np.arange(data.n_queries), accepted]
    stop = np.array([chain.index(j) for j in accepted])  # position in the chain of the accepted member
    usd = sum(np.where(stop >= k, data.cost[:, j], 0.0) for k, j in enumerate(chain))
    return make_row(CASCADE, correct, _known_mean(seconds), _share(data, accepted), cost=_known_mean(usd),
                    chain=tuple(data.models[j] for j in chain), threshold=threshold)


def agreement_row(data: RoutingData, cascade: AgreementCascade) -> Row:
    """The agreement cascade on `data`: accuracy, latency and USD of every member run (None when unknown),
    share = the stage that answered ('A+B' or the final model)."""
    correct, _, stage_of = agreement_choices(data, cascade)
    ran = [stage_of >= k for k in range(len(cascade.stages))]
    spent = {name: sum(np.where(ran[k], values[:, list(stage)].sum(axis=1), 0.0) for k, stage in enumerate(cascade.stages))
             for name, values in (("latency", data.latency), ("cost", data.cost))}
    names = [name for name in cascade.name(data).split(">")]
    share = {names[k]: float((stage_of == k).mean()) for k in range(len(names)) if (stage_of == k).any()}
    return make_row(CASCADE, correct, _known_mean(spent["latency"]), share, cost=_known_mean(spent["cost"]),
                    chain=tuple(names), threshold=round(cascade.share, 3))


def _add_cascade_rows(evaluation: Evaluation, train: RoutingData, chains: list[list[int]], threshold: float | None) -> None:
    """One row per cascade; without a given threshold, the one chosen on `train` (or the default when empty)."""
    test, best = evaluation.data, evaluation.best_single()
    for chain in chains:
        name, chosen = chain_name(test, chain), threshold
        if chosen is None and train.n_queries:
            point = choose_threshold(train, chain)
            chosen = point.threshold
            evaluation.notes.append(Note("cascade-threshold-chosen", cascade=name, threshold=chosen,
                                         training_queries=train.n_queries, training_accuracy=point.accuracy))
        elif chosen is None:
            chosen = DEFAULT_THRESHOLD
            evaluation.notes.append(Note("cascade-threshold-default", ("cascade_threshold",), cascade=name, threshold=chosen))
        row = cascade_row(test, chain, chosen)
        first = test.models[chain[0]]
        escalated = 1 - row.share.get(first, 0.0)
        evaluation.notes.append(Note("cascade-escalated", cascade=name, threshold=chosen, escalated=escalated,
                                     first_model=first))
        evaluation.rows.append(replace(row, vs_best=paired_test(row.correct, best.correct)))


AUTO_AGREE_TOLERANCE = 0.01  # the automatic agreement cascade: cheapest within 1 point of the best single model on train


def _add_agreement_rows(evaluation: Evaluation, train: RoutingData, named: list[tuple[tuple[str, ...], ...]],
                        share: float | None) -> None:
    """One row per named agreement cascade (its share given, else chosen on `train` among AGREE_SHARES, else 1),
    and, when every cost is known and there are training queries with answers, the cascade chosen on them."""
    test, best = evaluation.data, evaluation.best_single()
    rows = []
    for stages in named:
        base = agreement_cascade(test, stages)
        if share is not None or not train.n_queries:
            cascade = replace(base, share=1.0 if share is None else share)
        else:
            options = [replace(base, share=s) for s in distinct_shares(max(len(g) for g in base.stages[:-1]))]
            chosen = choose_agreement_cascade(train, options, reference=max(evaluate_agreement(train, c).accuracy
                                                                             for c in options))
            cascade = chosen.cascade
            evaluation.notes.append(Note("agreement-share-chosen", cascade=cascade.name(test), share=cascade.share,
                                         training_queries=train.n_queries, training_accuracy=chosen.accuracy))
        rows.append(agreement_row(test, cascade))
    if train.n_queries and train.cost_known and not named:
        try:
            chosen = choose_agreement_cascade(train, tolerance=AUTO_AGREE_TOLERANCE)
        except RoutingInputError as why:  # no answers to compare, or too few cheap models: said, not fatal
            evaluation.notes.append(Note("agreement-cascade-none", why.settings, reason=why.message))
        else:
            cascade = chosen.cascade
            evaluation.notes.append(Note("agreement-cascade-chosen", cascade=cascade.name(test), share=cascade.share,
                                         training_queries=train.n_queries, tolerance=AUTO_AGREE_TOLERANCE,
                                         training_accuracy=chosen.accuracy, training_cost=chosen.cost))
            rows.append(agreement_row(test, cascade))
    evaluation.rows += [replace(row, vs_best=paired_test(row.correct, best.correct)) for row in rows]


def _choices_per_policy(policies: list[str], scores: np.ndarray, seed: int, fit_scores: Callable[[], tuple[np.ndarray, np.ndarray]] | None):
    """Each policy's choices; policies that need fitting get (scores, labels) from `fit_scores`."""
    choices, fitting = {}, None
    for policy_name in policies:
        policy = make_policy(policy_name, seed=seed)
        if policy.needs_fit:
            if fit_scores is None:
                continue
            fitting = fitting or fit_scores()
            policy.fit(*fitting)
        choices[policy_name] = policy.choose(scores)
    return choices


def evaluate(data: RoutingData, spec: EvalSpec, *, fitted: dict[str, Router] | None = None, keep_fitted: bool = False,
             cache: FitCache | None = None) -> Evaluation:
    """Baselines on the test queries plus one row per router x policy (and upper bound), as `spec` asks.

    From `spec` (lm_routing.judging.spec.EvalSpec) evaluate reads what to evaluate: the routers to train
    (`trained_routers()`) with their hyper-parameters (`router_params()`), the policies, protocol, folds and
    seed, the cost limits and the cascades; its input and output fields (files, folders, JSON) are the
    caller's (lm_routing.experiment). The run-time objects are arguments: `fitted` routers (loaded from
    disk) are only scored, their policies that need fitting fit on their scores for the training queries
    or left out (with a note) when there are none; `keep_fitted` also returns each trained router fit on
    all training queries (all test queries under k-fold), for saving; `cache` shares fitted routers and
    out-of-fold scores across calls (a fresh one by default).

    The spec's fields, as evaluate uses them:
    - `protocol`: 'auto' (train -> test when there are training queries, else k-fold), 'train-test', or
      'test-kfold' (ignore training queries; k-fold inside the test queries).
    - `max_latency` (s/query) adds, per router, the most accurate cost-aware operating point
      (argmax P(solve) - lam * latency) within that budget; `budget` (mean price per query, with `prices`
      per model, e.g. USD) adds the same per router, priced instead of timed.
    - `policies_named` False (the policies are a default, not the user's): heavy routers run only the
      policies that need no extra fits (lm_routing.deciding.policies.policies_to_run), with a note.
    - `cascades` (chains of pool model names, cheapest first) add one row each, at `cascade_threshold`
      (agreement 0-1), or else at the threshold chosen on the training queries
      (lm_routing.deciding.cascade.choose_threshold), or else 0.8.
    - `agree_cascades` (stages of model names, lm_routing.deciding.cascade.parse_agreement_cascade) add one
      agreement cascade row each at `agree_share` (0-1; default chosen on the training queries); without
      them, when every cost (USD) is known, the agreement cascade chosen on the training queries adds one.
    A router that selects its own policy (`Router.selects`: auto, lm_routing.judging.auto) adds one row, first:
    its pick on the training queries of each fit (nested k-fold without a training split), with its
    hyper-parameters (e.g. auto's `features`, `within` points or `max_cost`) and the spec's `folds` and `seed`.
    """
    routers, policies, seed, folds = spec.trained_routers(), list(spec.policies), spec.seed, spec.folds
    max_latency, prices, budget = spec.max_latency, dict(spec.prices), spec.budget
    given = spec.router_params()
    params = {name: given.get(name, {}) for name in routers}
    chains = _check_names(data, routers, policies, params, list(spec.cascades), prices if budget is not None else None)
    selecting = [name for name in routers if ROUTERS[name].selects]
    routers = [name for name in routers if name not in selecting]
    plan = plan_protocol(data, spec.protocol, folds, seed, trains=bool(routers or selecting))
    train, test = plan.train, plan.test
    evaluation = Evaluation(test, plan.described, baseline_rows(test, seed), [], notes=list(plan.notes))
    _add_cascade_rows(evaluation, train, chains, spec.cascade_threshold)
    _add_agreement_rows(evaluation, train, list(spec.agree_cascades), spec.agree_share)
    cache = cache or FitCache()
    whole = train if train.n_queries else test  # what a kept router is fit on
    for name in selecting:
        make = lambda: ROUTERS[name](**{**params[name], "folds": folds, "seed": seed})  # noqa: E731
        fits = _add_pick_row(evaluation, name, make, plan.parts, cache)
        if keep_fitted:  # train -> test: the row's one fit is on `whole` already; k-fold fits it once more on all
            same = len(plan.parts) == 1 and plan.parts[0][0] is whole
            evaluation.fitted[name] = fits[0] if same else make().fit_data(whole, cache)
    for name in routers:
        run_policies, note = policies_to_run(name, ROUTERS[name].heavy, policies, spec.policies_named)
        evaluation.notes += [note] if note else []
        scores, choices = cross_fit_choices(name, params[name], plan, run_policies, (folds, seed), cache)
        if keep_fitted:
            evaluation.fitted[name] = cache.fitted(name, params[name], whole)
        _add_router_rows(evaluation, name, scores, choices, max_latency, (prices, budget))
    for name, router in (fitted or {}).items():
        _add_loaded_rows(evaluation, name, router, train, policies, seed, (max_latency, prices, budget))
    return evaluation


def _add_loaded_rows(evaluation: Evaluation, name: str, router: Router, train: RoutingData, policies: list[str],
                     seed: int, cost: tuple[float | None, dict[str, float] | None, float | None]) -> None:
    """Rows of a saved router: scored only; its policies that need fitting fit on its scores for the training
    queries, or are left out (with a note) when there are none. `cost`: (max_latency, prices, budget)."""
    scores = finite_scores(router.predict_proba(list(evaluation.data.queries), list(evaluation.data.datasets)), name)
    in_sample = (lambda: (finite_scores(router.predict_proba(list(train.queries), list(train.datasets)), name), train.labels)
                 ) if train.n_queries else None
    choices = _choices_per_policy(policies, scores, seed, in_sample)
    skipped = [p for p in policies if p not in choices]
    if skipped:
        evaluation.notes.append(Note("policies-left-out", router=name, policies=list(skipped)))
    max_latency, prices, budget = cost
    _add_router_rows(evaluation, name, scores, choices, max_latency, (prices, budget))


def _check_names(data: RoutingData, routers: list[str], policies: list[str], params: dict[str, dict],
                 cascades: list[tuple[str, ...]], prices: dict[str, float] | None) -> list[list[int]]:
    """Fail on unknown policies, routers, cascade members or prices before any training; the cascades' chains."""
    for name in policies:
        make_policy(name)
    for name in routers:
        make_router(name, **params[name]).check_ready()  # unloadable encoders too
    chains = [chain_indices(data, names) for names in cascades]
    if prices:
        price_matrix(data, prices)  # unknown or missing prices
    elif prices is not None:
        require_cost(data, "«budget»")
    return chains


@dataclass(frozen=True)
class Plan:
    """The protocol: which queries each router fit learns from and which test queries it scores."""

    train: RoutingData  # training queries (none under test-kfold)
    test: RoutingData  # the evaluated queries
    described: str  # the protocol in words, for the table's first line
    parts: list[tuple[RoutingData, np.ndarray]]  # per fit: (its data, the test positions it scores)
    notes: tuple[str, ...] = ()  # about the data: train/test gaps, no solver


def plan_protocol(data: RoutingData, protocol: str, folds: int, seed: int, trains: bool = True) -> Plan:
    """Train -> test when there are training queries (and `protocol` allows), else seeded k-fold on the test
    queries; `trains` False (only saved routers are scored): no fits at all."""
    train, test = data.split(TRAIN), data.split(TEST)
    if test.n_queries == 0:
        raise RoutingInputError("no test queries: the logs hold only training tasks; add test-split runs")
    check_known("protocol", [protocol], PROTOCOLS)
    if protocol == "train-test" and not train.n_queries:
        raise RoutingInputError("«protocol» train-test needs training queries (tasks named *_train, or «scores» with «test_scores»)")
    notes = (contamination_notes(train, test) if train.n_queries else []) + no_solver_notes(test)
    if protocol == "test-kfold":
        train = train.take(np.zeros(train.n_queries, dtype=bool))
    if not trains:
        return Plan(train, test, f"saved router(s) scored on {test.n_queries} test queries", [], tuple(notes))
    if train.n_queries:
        described = f"train ({train.n_queries} queries) -> test ({test.n_queries} queries)"
        return Plan(train, test, described, [(train, np.arange(test.n_queries))], tuple(notes))
    described = f"{folds}-fold cross-fitting on {test.n_queries} test queries (seed {seed})"
    return Plan(train, test, described, [(test.take(fit), held_out) for fit, held_out in test.kfold(folds, seed)], tuple(notes))


def cross_fit_choices(name: str, params: dict, plan: Plan, policies: list[str], folds_seed: tuple[int, int],
                      cache: FitCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(P(solve) per test query and model, each policy's choices): every test query scored by the fit that
    did not see it; policies that need fitting fit on that fit's out-of-fold scores."""
    folds, seed = folds_seed
    test = plan.test
    scores = np.zeros(test.labels.shape)
    choices = {p: np.zeros(test.n_queries, dtype=int) for p in policies}
    for fit_data, held_out in tqdm(plan.parts, desc=f"router {name}", disable=len(plan.parts) < 2, leave=False):
        router = cache.fitted(name, params, fit_data)
        scores[held_out] = router.predict_proba([test.queries[i] for i in held_out])
        k = min(folds, fit_data.n_queries)
        oof = lambda fit_data=fit_data, k=k: cache.policy_fit_scores(name, params, fit_data, k, seed)  # noqa: E731
        for policy_name, chosen in _choices_per_policy(policies, scores[held_out], seed, oof).items():
            choices[policy_name][held_out] = chosen
    return scores, choices


def pick_outcomes(deployed: DeployedPick, data: RoutingData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model per query, correct 0/1, USD per query; NaN unknown) of auto's deployed pick on `data`. A cascade
    pick decides by its members' answers, replayed from `data`'s own; its model is the (first) member whose
    answer was taken and its cost that of every member run."""
    rows = np.arange(data.n_queries)
    if deployed.kind == CASCADE_PICK:
        cascade = agreement_cascade(data, tuple(map(tuple, deployed.stages)), deployed.share)
        correct, cost, stage = agreement_choices(data, cascade)
        return np.array([cascade.stages[k][0] for k in stage], dtype=int), correct, cost
    choices = np.argmax(deployed.predict_proba(list(data.queries), list(data.datasets)), axis=1)
    return choices, data.labels[rows, choices], data.cost[rows, choices]


def _add_pick_row(evaluation: Evaluation, name: str, make, parts: list[tuple[RoutingData, np.ndarray]],
                  cache: FitCache) -> list[Router]:
    """The `router:<name>` row of a router that selects (auto), first in the table: per fit, the pick it chose on
    that fit's training queries alone (`make()`: a fresh router), replayed on the held-out queries. Returns the
    fitted routers, one per fit."""
    test = evaluation.data
    choices = np.zeros(test.n_queries, dtype=int)
    correct, cost, notes, fits = np.zeros(test.n_queries), np.zeros(test.n_queries), set(), []
    for fit_data, held_out in tqdm(parts, desc=f"router {name}", disable=len(parts) < 2, leave=False):
        router = make().fit_data(fit_data, cache, n_test=len(held_out))  # fewer candidates when large (judging.limits)
        fits.append(router)
        choices[held_out], correct[held_out], cost[held_out] = pick_outcomes(router.pick_, test.take(held_out))
        evaluation.selections.append(router.selection_)
        notes.add(getattr(router, "plan_note_", None))
    for note in sorted(notes - {None}, key=lambda n: json.dumps(n.to_json())):  # what it left out at this size, and why
        evaluation.notes.append(note.as_note())
    row = make_row(ROUTER, correct, _mean_latency(test, choices), _share(test, choices), cost=_known_mean(cost), router=name)
    evaluation.rows.insert(0, replace(row, vs_best=paired_test(row.correct, evaluation.best_single().correct)))
    evaluation.routed.append(Routed(name, "pick", np.eye(test.n_models)[choices], choices))
    if len(parts) == 1:
        selection = evaluation.selections[0]
        evaluation.notes.append(pick_note(name, selection, test.datasets))
        evaluation.notes.extend(warning.as_note() for warning in selection.warnings)
    else:
        picks = Counter(s.pick.candidate.name for s in evaluation.selections)
        evaluation.notes.append(Note("auto-picks-per-fold", router=name, folds=len(parts), picks=dict(picks.most_common())))
    return fits


def pick_note(name: str, selection: Selection, test_datasets: tuple[str, ...] | list[str] | None = None) -> Note:
    """The "auto-pick" note: what `selection` deployed, what it expects on these test queries (their dataset mix and
    count) and by which rule; the candidates' list stays in the JSON report's "auto" (it can be long)."""
    summary = selection.to_json(test_datasets)
    return Note("auto-pick", router=name, pick=summary["pick"], runner_up=summary["runner_up"],
                expected=summary["expected"], folds=selection.folds, training_queries=selection.n_queries,
                test_queries=len(test_datasets) if test_datasets else None, candidates=len(selection.ranked),
                required_gain=summary["required_gain"], within=selection.objective.within,
                max_cost=selection.objective.max_cost)


def _add_router_rows(evaluation: Evaluation, name: str, scores: np.ndarray, choices: dict[str, np.ndarray],
                     max_latency: float | None = None,
                     priced: tuple[dict[str, float] | None, float | None] = (None, None)) -> None:
    test = evaluation.data
    if max_latency is not None:
        lam = lambda_for_budget(scores, require_latency(test.latency, "a latency budget (max_latency)"), max_latency)
        choices = {**choices, f"cost@{max_latency:g}s": cost_aware_choices(scores, test.latency, lam)}
    prices, budget = priced
    if budget is not None:
        price = price_matrix(test, prices) if prices else require_cost(test, "«budget»")
        lam = lambda_for_budget(scores, price, budget, option="«budget»", unit="USD")
        chosen = cost_aware_choices(scores, price, lam)
        choices = {**choices, f"cost@${budget:g}": chosen}
        spent = float(price[np.arange(test.n_queries), chosen].mean())
        evaluation.notes.append(Note("budget-operating-point", router=name, budget=budget, lam=float(lam), mean_cost=spent))
    best = evaluation.best_single()
    evaluation.calibration[name] = expected_calibration_error(scores, test.labels)
    evaluation.rows.append(upper_bound_row(test, scores, name))
    for policy_name, chosen in choices.items():
        row = choice_row(ROUTER, test, chosen, router=name, policy=policy_name)
        evaluation.rows.append(replace(row, vs_best=paired_test(row.correct, best.correct)))
        evaluation.routed.append(Routed(name, policy_name, scores, chosen))


def contamination_notes(train: RoutingData, test: RoutingData) -> list[Note]:
    """Warn for each model whose training-query accuracy differs from its test accuracy beyond the 95% CI.

    Routers learn the training labels: a model trained on the training split
    (MetaMath on GSM8K train) looks better there than on test, and routers follow.
    """
    notes = []
    for j, model in enumerate(train.models):
        p_train, p_test = train.labels[:, j].mean(), test.labels[:, j].mean()
        if proportions_differ(p_train, train.n_queries, p_test, test.n_queries):
            notes.append(Note("train-test-gap", ("protocol",), model=model, train_accuracy=float(p_train),
                              test_accuracy=float(p_test)))
    return notes


def no_solver_notes(test: RoutingData) -> list[Note]:
    """A note when no model solves any test query: every row of the table is then 0.00, and says nothing."""
    if test.n_queries == 0 or (test.labels > 0).any():
        return []
    return [Note("no-solver", ("metric", "filter"), test_queries=test.n_queries, invalid_answer=INVALID)]
