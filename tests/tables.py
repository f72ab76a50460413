"""Small RoutingData tables for tests: labels in, a valid table out (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

import numpy as np

from lm_routing.data import RoutingData


def make_data(labels, latency=None, answers=None, splits=None) -> RoutingData:
    labels = np.asarray(labels, dtype=float)
    n, m = labels.shape
    if latency is None:
        latency = np.full((n, m), np.nan)
    latency = np.asarray(latency, dtype=float)
    if latency.ndim == 1:
        latency = np.tile(latency, (n, 1))
    if answers is None:
        answers = np.full((n, m), None, dtype=object)
    return RoutingData(
        query_ids=tuple(f"q{i}" for i in range(n)),
        queries=tuple(f"query number {i}" for i in range(n)),
        datasets=("toy",) * n,
        splits=tuple(splits or ["test"] * n),
        models=tuple(f"m{j}" for j in range(m)),
        labels=labels,
        solve_rates=labels.copy(),
        answers=np.asarray(answers, dtype=object),
        latency=latency,
        latency_source=("test",) * m,
    )
