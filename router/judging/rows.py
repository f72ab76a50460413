"""A row of the comparison table as typed fields; its string names are made here, and only here, for output.

Kinds: `oracle`, `oracle-cheapest`, `random`, `all` (baselines, no other field), `model` (one pool
model), `cascade` (chain of pool models at a threshold), `upper-bound` (one router's classifier bound)
and `router` (one router x policy; policy None for `auto`'s own pick). A benchmark may use a label of
its own as the kind (a peer system's name): it prints as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lm_routing.judging.metrics import PairedTest, bootstrap_ci

MODEL, ROUTER, CASCADE, UPPER_BOUND = "model", "router", "cascade", "upper-bound"


@dataclass(frozen=True)
class Row:
    """One line of the comparison table. accuracy: fraction 0-1; latency_s: mean s/query; cost: mean USD per
    query (None when unknown)."""

    kind: str
    accuracy: float
    latency_s: float | None
    n: int
    model: str | None = None  # kind model: the pool model
    router: str | None = None  # kinds router and upper-bound: the router's name
    policy: str | None = None  # kind router: the policy (None: the router picks one model itself, as auto does)
    chain: tuple[str, ...] = ()  # kind cascade: pool models, cheapest first
    threshold: float | None = None  # kind cascade: agreement 0-1 at which an answer is accepted
    share: dict[str, float] = field(default_factory=dict)  # model -> fraction of queries routed to it
    correct: np.ndarray = field(default=None, repr=False, compare=False)  # per query, for intervals and tests
    ci: tuple[float, float] | None = None  # 95% bootstrap interval of accuracy
    vs_best: PairedTest | None = None  # router rows: paired test against the best single model
    cost: float | None = None  # mean USD per query (every model run counted); None when a cost is unknown

    @property
    def method(self) -> str:
        """The row's name in the JSON report and the tests: `model:<name>`, `router:<name>[:<policy>]`,
        `cascade:<A>B>@<threshold>`, or the kind itself (upper-bound names its router in `router`)."""
        if self.kind == MODEL:
            return f"{MODEL}:{self.model}"
        if self.kind == ROUTER:
            return ":".join([ROUTER, self.router] + ([self.policy] if self.policy is not None else []))
        if self.kind == CASCADE:
            return f"{CASCADE}:{'>'.join(self.chain)}@{self.threshold:g}"
        return self.kind

    @property
    def label(self) -> str:
        """The row's name in the printed table: the method, with the router after an upper bound's."""
        return f"{self.kind}:{self.router}" if self.kind == UPPER_BOUND else self.method


def make_row(kind: str, correct: np.ndarray, latency: float | None, share: dict[str, float] | None = None,
             seed: int = 0, cost: float | None = None, **names) -> Row:
    """A row from per-query correctness (fractions 0-1), with its bootstrap interval; `cost`: mean USD per
    query or None; `names`: model, router, policy, chain, threshold as the kind needs."""
    correct = np.asarray(correct, dtype=float)
    return Row(kind, float(correct.mean()), latency, len(correct), share=share or {}, correct=correct,
               ci=bootstrap_ci(correct, seed), cost=cost, **names)
