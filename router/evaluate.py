"""Evaluation: the routing paper's baselines and router x policy rows over RoutingData.

Protocol: with a train split and a test split, routers are fit on train and
scored on test. With test queries only, seeded k-fold cross-fitting: each
fold is scored by a router fit on the other folds. Policies that need fitting
(prediction) are fit on out-of-fold router scores of the training queries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from router.data import TEST, TRAIN, RoutingData, RoutingInputError
from router.policies import make_policy
from router.routers import make_router

RANDOM_DRAWS = 1000


@dataclass(frozen=True)
class Row:
    """One line of the comparison table. accuracy: fraction 0-1; latency_s: mean s/query."""

    method: str
    accuracy: float
    latency_s: float | None
    n: int
    router: str | None = None
    share: dict[str, float] = field(default_factory=dict)  # model -> fraction of queries routed to it


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


def _mean_latency(data: RoutingData, choices: np.ndarray) -> float | None:
    values = data.latency[np.arange(data.n_queries), choices]
    return None if np.isnan(values).any() else float(values.mean())


def _share(data: RoutingData, choices: np.ndarray) -> dict[str, float]:
    counts = np.bincount(choices, minlength=data.n_models) / max(len(choices), 1)
    return {m: float(c) for m, c in zip(data.models, counts) if c > 0}


def choice_row(method: str, data: RoutingData, choices: np.ndarray, router: str | None = None) -> Row:
    """Accuracy and latency of sending query i to model choices[i]."""
    correct = data.labels[np.arange(data.n_queries), choices]
    return Row(method, float(correct.mean()), _mean_latency(data, choices), data.n_queries, router, _share(data, choices))


def oracle_choices(data: RoutingData, cheapest: bool = False) -> np.ndarray:
    """First model in pool order that solves each query (or the cheapest that does).

    A query no model solves goes to the first model (or the cheapest one).
    """
    solved = data.labels > 0
    if not cheapest:
        return np.argmax(solved, axis=1)  # first True in pool order; model 0 when none
    if np.isnan(data.latency).any():
        raise RoutingInputError("the cheapest-correct oracle needs every model's latency; pass --latency")
    cheapest_solver = np.argmin(np.where(solved, data.latency, np.inf), axis=1)
    return np.where(solved.any(axis=1), cheapest_solver, np.argmin(data.latency, axis=1))


def random_row(data: RoutingData, seed: int, draws: int = RANDOM_DRAWS) -> Row:
    """Uniform random model per query, averaged over `draws` seeded draws."""
    picks = np.random.default_rng(seed).integers(0, data.n_models, size=(draws, data.n_queries))
    accuracy = float(data.labels[np.arange(data.n_queries), picks].mean())
    latency = None if np.isnan(data.latency).any() else float(data.latency[np.arange(data.n_queries), picks].mean())
    return Row("random", accuracy, latency, data.n_queries)


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
    latency = None if np.isnan(data.latency).any() else float(data.latency.sum(axis=1).mean())
    return Row("all", float(np.mean(correct)), latency, data.n_queries)


def _vote_is_right(answers: np.ndarray, labels: np.ndarray) -> bool:
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    best = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == best)
    return any(a == winner and y > 0 for a, y in zip(answers, labels))


def upper_bound_row(data: RoutingData, scores: np.ndarray, router: str) -> Row:
    """Classifier upper bound: the first model predicted solvable (P >= 0.5) that truly is.

    A query with no such model goes to the router's top-scored model.
    """
    good = (scores >= 0.5) & (data.labels > 0)
    choices = np.where(good.any(axis=1), np.argmax(good, axis=1), np.argmax(scores, axis=1))
    return choice_row("upper-bound", data, choices, router=router)


def baseline_rows(data: RoutingData, seed: int) -> list[Row]:
    """Oracle (both variants), random, all-models vote, then each single model."""
    rows = [choice_row("oracle", data, oracle_choices(data))]
    if not np.isnan(data.latency).any():
        rows.append(choice_row("oracle-cheapest", data, oracle_choices(data, cheapest=True)))
    rows += [random_row(data, seed), all_models_row(data)]
    rows += [choice_row(f"model:{m}", data, np.full(data.n_queries, j)) for j, m in enumerate(data.models)]
    return rows


def cross_fit_scores(
    router_name: str, data: RoutingData, folds: int, seed: int, params: dict | None = None
) -> np.ndarray:
    """Out-of-fold router scores for every query of `data` (k-fold cross-fitting)."""
    scores = np.zeros(data.labels.shape)
    for train_index, test_index in data.kfold(folds, seed):
        router = make_router(router_name, **(params or {}))
        router.fit([data.queries[i] for i in train_index], data.labels[train_index])
        scores[test_index] = router.predict_proba([data.queries[i] for i in test_index])
    return scores


def _route(name: str, train: RoutingData, test: RoutingData, policies: list[str], seed: int, folds: int, params: dict | None):
    """Fit router `name` on train, score test; fit each policy on out-of-fold train scores."""
    router = make_router(name, **(params or {}))
    router.fit(list(train.queries), train.labels)
    scores = router.predict_proba(list(test.queries))
    train_scores = None
    choices = {}
    for policy_name in policies:
        policy = make_policy(policy_name, seed=seed)
        if policy.needs_fit:
            if train_scores is None:
                train_scores = cross_fit_scores(name, train, min(folds, train.n_queries), seed, params)
            policy.fit(train_scores, train.labels)
        choices[policy_name] = policy.choose(scores)
    return scores, choices


def evaluate(
    data: RoutingData,
    routers: list[str],
    policies: list[str],
    seed: int = 0,
    folds: int = 5,
    router_params: dict[str, dict] | None = None,
) -> Evaluation:
    """Baselines on the test queries plus one row per router x policy (and upper bound)."""
    for name in policies:
        make_policy(name)  # unknown names fail before any training
    for name in routers:
        make_router(name, **(router_params or {}).get(name, {}))
    train, test = data.split(TRAIN), data.split(TEST)
    if test.n_queries == 0:
        raise RoutingInputError("no test queries: the logs hold only training tasks; add test-split runs")
    if train.n_queries:
        protocol = f"train ({train.n_queries} queries) -> test ({test.n_queries} queries)"
        parts = [(train, np.arange(test.n_queries))]
    else:
        protocol = f"{folds}-fold cross-fitting on {test.n_queries} test queries (seed {seed})"
        parts = [(test.take(fit), held_out) for fit, held_out in test.kfold(folds, seed)]
    rows = baseline_rows(test, seed)
    routed: list[Routed] = []
    for name in routers:
        params = (router_params or {}).get(name)
        scores = np.zeros(test.labels.shape)
        choices = {p: np.zeros(test.n_queries, dtype=int) for p in policies}
        for fit_data, held_out in tqdm(parts, desc=f"router {name}", disable=len(parts) < 2, leave=False):
            part_scores, part_choices = _route(name, fit_data, test.take(held_out), policies, seed, folds, params)
            scores[held_out] = part_scores
            for policy_name, chosen in part_choices.items():
                choices[policy_name][held_out] = chosen
        rows.append(upper_bound_row(test, scores, name))
        for policy_name in policies:
            rows.append(choice_row(f"router:{name}:{policy_name}", test, choices[policy_name], router=name))
            routed.append(Routed(name, policy_name, scores, choices[policy_name]))
    return Evaluation(test, protocol, rows, routed)
