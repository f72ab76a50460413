"""Offline cascades: escalate to the next model when a model's own K samples disagree.

A cascade is a chain of pool models, cheapest first. Per query it runs the
first member and accepts its majority answer when the member's agreement
(vote share 0-1 of that answer among its K samples, see `RoutingData.agreement`)
is at least the threshold; otherwise it also runs the next member, and so on;
the last member is always accepted. Agreement needs no labels, so a cascade
works at deployment time; here it is replayed over logged samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router.data import RoutingData, RoutingInputError
from router.errors import check_known

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
    check_known("model", names, data.models, source="--cascade")
    check_chain(names)
    return [data.models.index(name) for name in names]


def check_chain(members: tuple | list) -> None:
    """The cascade rule: 2 or more members (names or pool positions), each once, none empty; RoutingInputError otherwise."""
    if len(members) < 2 or len(set(members)) != len(members) or not all(str(m) for m in members):
        raise RoutingInputError(
            f"--cascade {','.join(map(str, members))}: a cascade needs 2 or more different models, cheapest first (e.g. A,B)"
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
