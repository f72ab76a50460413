"""Offline cascades: escalate to the next model when a model's own K samples disagree.

A cascade is a chain of pool models, cheapest first. Per query it runs the
first member and accepts its majority answer when the member's agreement
(vote share 0-1 of that answer among its K samples, see `RoutingData.agreement`)
is at least the threshold; otherwise it also runs the next member, and so on;
the last member is always accepted. Agreement needs no labels, so a cascade
works at deployment time; here it is replayed over logged samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from lm_routing.data import RoutingData, RoutingInputError
from lm_routing.errors import check_known

THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(11))  # 0.0, 0.1, ..., 1.0
DEFAULT_THRESHOLD = 0.8  # used when there are no training queries to choose one on
TOLERANCE = 0.005  # half a point of training accuracy: not worth escalating more for


@dataclass(frozen=True)
class CascadePoint:
    """A cascade at one threshold: accuracy (fraction 0-1), mean seconds per query
    (all members run included; NaN when a latency is unknown), and the share 0-1 of
    queries escalated past the first member."""

    threshold: float
    accuracy: float
    seconds: float
    escalated: float


def chain_indices(data: RoutingData, names: tuple[str, ...] | list[str]) -> list[int]:
    """Pool positions of a chain of model names (at least 2, each once); unknown names raise."""
    check_known("model", names, data.models, source="«cascades»")
    check_chain(names)
    return [data.models.index(name) for name in names]


def check_chain(members: tuple | list) -> None:
    """The cascade rule: 2 or more members (names or pool positions), each once, none empty; RoutingInputError otherwise."""
    if len(members) < 2 or len(set(members)) != len(members) or not all(str(m) for m in members):
        raise RoutingInputError(
            f"«cascades» {','.join(map(str, members))}: a cascade needs 2 or more different models, cheapest first (e.g. A,B)"
        )


def chain_name(data: RoutingData, chain: list[int]) -> str:
    """'A>B>C' for a chain of pool positions."""
    return ">".join(data.models[j] for j in chain)


def cascade_choices(data: RoutingData, chain: list[int], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(accepted model per query, seconds spent per query) of the cascade over `chain` (pool positions).

    Member k's answer is accepted when its agreement >= `threshold` (0 never
    escalates; above 1 always runs the whole chain); the last member is always
    accepted. Seconds are the summed latency of every member run (NaN when one
    is unknown). Members whose agreement is unknown (NaN) raise, but for the
    last one, which never decides.
    """
    check_chain(chain)
    for j in chain[:-1]:
        if np.isnan(data.agreement[:, j]).any():
            raise RoutingInputError(
                f"cascade needs each member's K samples; {data.models[j]}'s logs have none "
                "(score tables carry no samples); use logs of a task with repeats"
            )
    accepted = np.full(data.n_queries, chain[-1])
    seconds = np.zeros(data.n_queries)
    pending = np.ones(data.n_queries, dtype=bool)  # queries still walking down the chain
    for k, j in enumerate(chain):
        seconds[pending] += data.latency[pending, j]
        last = k == len(chain) - 1
        stop = pending if last else pending & (data.agreement[:, j] >= threshold)
        accepted[stop] = j
        pending &= ~stop
    return accepted, seconds


def evaluate_cascade(data: RoutingData, chain: list[int], threshold: float) -> CascadePoint:
    """The cascade's accuracy, mean seconds per query and escalation share on `data`."""
    accepted, seconds = cascade_choices(data, chain, threshold)
    return CascadePoint(
        threshold=float(threshold),
        accuracy=float(data.labels[np.arange(data.n_queries), accepted].mean()),
        seconds=float(seconds.mean()),
        escalated=float((accepted != chain[0]).mean()),
    )


def sweep_thresholds(data: RoutingData, chain: list[int], thresholds: tuple[float, ...] = THRESHOLDS) -> list[CascadePoint]:
    """One point per threshold, in the order given."""
    return [evaluate_cascade(data, chain, t) for t in thresholds]


def choose_threshold(train: RoutingData, chain: list[int], thresholds: tuple[float, ...] = THRESHOLDS,
                     tolerance: float = TOLERANCE) -> CascadePoint:
    """The lowest threshold (it escalates least: the cheapest) whose accuracy on the training
    queries is within `tolerance` (fraction 0-1) of the best one's. Without the tolerance, flat
    accuracy at high thresholds buys escalations for nothing. Pass training queries only."""
    if train.n_queries == 0:
        raise ValueError("choosing a cascade threshold needs training queries")
    points = sorted(sweep_thresholds(train, chain, thresholds), key=lambda p: p.threshold)
    best = max(p.accuracy for p in points)
    return next(p for p in points if p.accuracy >= best - tolerance - 1e-12)


# Cascades on agreement across models -------------------------------------------------------------
#
# Stage k runs a group of pool models (in parallel) and accepts their most common extracted answer
# when at least a share `share` (0-1) of the group gives it; otherwise the next stage runs. The last
# stage is one model, always accepted. Answers are RoutingData.answers: the majority answer of a
# model's samples (harness logs) or a table's response column through lm_routing.reading.logs.normalise_answer.
# Cost counts every member that ran: USD when every cost is known (RoutingData.cost), else seconds.

AGREE_SHARES = (0.5, 2 / 3, 0.75, 1.0)  # the shares a chooser tries (a group of 2: 0.5 always accepts)
CODE_DATASETS = ("humaneval", "mbpp", "code", "apps", "ds1000")  # answers are programs: no comparable answer


@dataclass(frozen=True)
class AgreementCascade:
    """Stages of pool positions, cheapest first: every stage but the last is a group of 1 or more models
    whose answers must agree (a share >= `share`, 0-1, of the group on one answer); the last is 1 model."""

    stages: tuple[tuple[int, ...], ...]
    share: float = 1.0

    def name(self, data: RoutingData) -> str:
        """'A+B>C' for the stages' model names."""
        return ">".join("+".join(data.models[j] for j in stage) for stage in self.stages)


@dataclass(frozen=True)
class AgreementResult:
    """A cascade on some queries: accuracy (fraction 0-1), mean cost per query (USD, or seconds when
    `unit` is 's'; every member that ran counted), share 0-1 of queries escalated past the first stage."""

    cascade: AgreementCascade
    accuracy: float
    cost: float
    escalated: float
    unit: str


def parse_agreement_cascade(text: str) -> tuple[tuple[str, ...], ...]:
    """'A+B>C' -> (('A', 'B'), ('C',)): stages split on '>', members on '+'; at least 2 stages, the last
    one model, no model twice; RoutingInputError otherwise."""
    stages = tuple(tuple(name.strip() for name in stage.split("+")) for stage in text.split(">"))
    names = [name for stage in stages for name in stage]
    if len(stages) < 2 or len(stages[-1]) != 1 or not all(names) or len(set(names)) != len(names):
        raise RoutingInputError(f"«agree_cascades» {text}: expected cheap models joined by '+', then '>' and the model "
                                "to escalate to, each model once (e.g. A+B>C or A+B>C+D>E)")
    return stages


def agreement_cascade(data: RoutingData, stages: tuple[tuple[str, ...], ...], share: float = 1.0) -> AgreementCascade:
    """The cascade of named stages (as parse_agreement_cascade gives them) over `data`'s pool; unknown names raise."""
    check_known("model", [name for stage in stages for name in stage], data.models, source="«agree_cascades»")
    return AgreementCascade(tuple(tuple(data.models.index(name) for name in stage) for stage in stages), share)


def check_comparable(data: RoutingData, cascade: AgreementCascade) -> None:
    """Raise (one line) when the members' answers cannot be compared: none given, or code answers."""
    code = sorted({d for d in data.datasets if any(word in d.lower() for word in CODE_DATASETS)})
    if code:
        raise RoutingInputError(f"agreement cascade {cascade.name(data)}: dataset {code[0]} has programs as answers, "
                                "which cannot be compared; use «cascades» (each model's own samples) there")
    for stage in cascade.stages[:-1]:
        for j in stage:
            if data.n_queries and all(a is None for a in data.answers[:, j]):
                raise RoutingInputError(
                    f"agreement cascade {cascade.name(data)}: {data.models[j]} has no answers to compare (a score table "
                    "without a response column?); give a table with responses or harness logs")


def cascade_cost(data: RoutingData) -> tuple[np.ndarray, str]:
    """(queries x models cost, unit): USD per query when every cost is known, else seconds per query."""
    return (data.cost, "USD") if data.cost_known else (data.latency, "s")


def agreement_choices(data: RoutingData, cascade: AgreementCascade) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(correct 0/1 per query, cost per query of every member run, stage index 0.. that answered).

    A stage accepts its most common answer (ties: the first member's) when a share >= `cascade.share` of
    its members give it and it is not None; the accepted answer is correct when the member that gave it
    first solved the query. Costs: USD or seconds (see cascade_cost); NaN when one is unknown."""
    check_comparable(data, cascade)
    cost, _ = cascade_cost(data)
    n = data.n_queries
    correct, spent = np.zeros(n), np.zeros(n)
    stage_of = np.full(n, len(cascade.stages) - 1)
    pending = np.ones(n, dtype=bool)
    for k, stage in enumerate(cascade.stages):
        members = list(stage)
        spent[pending] += cost[np.ix_(pending, members)].sum(axis=1)
        if k == len(cascade.stages) - 1:
            accept, giver = pending.copy(), np.full(n, members[0])
        else:
            accept, giver = _group_accepts(data.answers[:, members], cascade.share)
            accept &= pending
            giver = np.asarray(members)[giver]
        correct[accept] = data.labels[accept, giver[accept]]
        stage_of[accept] = k
        pending &= ~accept
    return correct, spent, stage_of


def _group_accepts(answers: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(the group agrees, column of the first member giving the majority answer) per query of a (queries x
    members) array of answers (None: no answer, never agrees)."""
    codes = answer_codes(answers)
    known = codes >= 0
    votes = ((codes[:, :, None] == codes[:, None, :]) & known[:, :, None]).sum(axis=2)  # members agreeing with each
    giver = np.argmax(votes, axis=1)  # ties: the first member
    top = votes[np.arange(len(codes)), giver]
    return (top > 0) & (top >= share * codes.shape[1] - 1e-9), giver


def answer_codes(answers: np.ndarray) -> np.ndarray:
    """Integer codes of an object array of answers: equal answers equal codes, None -1."""
    table: dict = {}
    return np.array([[-1 if a is None else table.setdefault(a, len(table)) for a in row] for row in answers],
                    dtype=int).reshape(answers.shape)


def evaluate_agreement(data: RoutingData, cascade: AgreementCascade) -> AgreementResult:
    """The cascade's accuracy, mean cost per query (all members run) and escalation share on `data`."""
    correct, spent, stage_of = agreement_choices(data, cascade)
    return AgreementResult(cascade, float(correct.mean()), float(spent.mean()), float((stage_of > 0).mean()),
                           cascade_cost(data)[1])


def agreement_candidates(train: RoutingData, sizes: tuple[int, ...] = (2, 3), final: int | None = None,
                         shares: tuple[float, ...] = AGREE_SHARES) -> list[AgreementCascade]:
    """Every one-group cascade `members > final` for groups of `sizes` among the models cheaper than `final`
    (default: the model most accurate on `train`), at each share that can differ for the group's size.
    Cheaper: lower mean cost on `train` (USD, else seconds). Pass training queries only."""
    cost = cascade_cost(train)[0].mean(axis=0)
    final = int(np.argmax(train.labels.mean(axis=0))) if final is None else final
    cheaper = [j for j in range(train.n_models) if j != final and (np.isnan(cost[j]) or cost[j] < cost[final])]
    usable = [j for j in cheaper if any(a is not None for a in train.answers[:, j])]
    out = []
    for size in sizes:
        for group in combinations(usable, size):
            out += [AgreementCascade((group, (final,)), share) for share in distinct_shares(size, shares)]
    return out


def distinct_shares(size: int, shares: tuple[float, ...] = AGREE_SHARES) -> list[float]:
    """The shares 0-1 of `shares` that differ for a group of `size` members, as votes/size (2 of 3: 0.667),
    leaving out those a plurality always meets but for a group of 2 (0.5: accept any answer)."""
    votes = {math.ceil(s * size - 1e-9) for s in shares if s * size > size / 2 - 1e-9 or size == 2}
    return [v / size for v in sorted(votes)]


def choose_agreement_cascade(train: RoutingData, candidates: list[AgreementCascade] | None = None,
                             tolerance: float | None = TOLERANCE, budget: float | None = None,
                             reference: float | None = None) -> AgreementResult:
    """The cascade to deploy, chosen on training queries only (pass only those):

    - with `budget` (mean cost per query, USD or seconds as cascade_cost gives): the most accurate candidate
      whose mean training cost is within it (ties: the cheaper);
    - else the cheapest candidate whose training accuracy is within `tolerance` (fraction 0-1) of `reference`
      (default: the training accuracy of the most accurate single model), else the most accurate one.
    A cascade that costs more on training than its final model alone is left out (the final model alone would
    be as good and cheaper) unless every candidate does; when none is within the tolerance, the most accurate
    of the rest is returned (compare its accuracy with `reference` to tell). `candidates` default: agreement_candidates(train). Returns its
    result on the training queries."""
    if train.n_queries == 0:
        raise ValueError("choosing an agreement cascade needs training queries")
    candidates = agreement_candidates(train) if candidates is None else candidates
    if not candidates:
        raise RoutingInputError("no agreement cascade to choose from: the pool needs 2 or more models cheaper than "
                                "the most accurate one, with answers")
    results = [evaluate_agreement(train, c) for c in candidates]
    if budget is not None:
        within = [r for r in results if r.cost <= budget + 1e-12]
        if not within:
            raise RoutingInputError(f"no agreement cascade costs {budget:g} {results[0].unit}/query or less on the "
                                    "training queries; raise the budget")
        return max(within, key=lambda r: (r.accuracy, -r.cost))
    reference = float(train.labels.mean(axis=0).max()) if reference is None else reference
    cheaper = [r for r in results if r.cost < _final_cost(train, r)] or results
    good = [r for r in cheaper if r.accuracy >= reference - (tolerance or 0.0) - 1e-12]
    return min(good, key=lambda r: (r.cost, -r.accuracy)) if good else max(cheaper, key=lambda r: (r.accuracy, -r.cost))


def _final_cost(train: RoutingData, result: AgreementResult) -> float:
    """Mean training cost of the cascade's final model alone (same unit as the result)."""
    return float(cascade_cost(train)[0][:, result.cascade.stages[-1][0]].mean())
