"""Out-of-fold scores: the same in worker processes as in this one, computed once per router and data."""

from __future__ import annotations

import dataclasses

import numpy as np

from router.crossfit import PARALLEL_MIN_QUERIES, FitCache, cross_fit_scores
from router.data import RoutingData


def toy(n: int) -> RoutingData:
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "omega", "sigma"])
    queries = tuple(" ".join(rng.choice(words, 5)) + f" {i}" for i in range(n))
    labels = np.stack([[("alpha" in q), ("beta" in q), rng.random() < 0.5] for q in queries]).astype(float)
    return RoutingData(query_ids=tuple(f"q{i}" for i in range(n)), queries=queries, datasets=("toy",) * n,
                       splits=("train",) * n, models=("a", "b", "c"), labels=labels, solve_rates=labels.copy(),
                       answers=np.full((n, 3), None, dtype=object), latency=np.full((n, 3), np.nan),
                       latency_source=("unknown",) * 3)


def test_parallel_folds_give_the_same_scores_as_one_process():
    data = toy(PARALLEL_MIN_QUERIES + 100)
    one = cross_fit_scores("lr", {}, data, 5, seed=3, n_jobs=1)
    two = cross_fit_scores("lr", {}, data, 5, seed=3, n_jobs=2)
    np.testing.assert_array_equal(one, two)
    assert one[:, 0][np.array(["alpha" in q for q in data.queries])].mean() > 0.8  # each query scored out of fold


def test_cache_fits_once_per_router_params_and_data():
    data, cache = toy(60), FitCache()
    first = cache.out_of_fold("knn", {}, data, 5, seed=0)
    assert cache.out_of_fold("knn", {"features": "tfidf"}, data, 5, seed=0) is first  # defaults resolved: one router
    assert cache.out_of_fold("knn", {}, data, 5, seed=1) is not first
    assert cache.fitted("knn", {}, data) is cache.fitted("knn", {"n_neighbors": 20}, data)
    relabelled = dataclasses.replace(data, labels=1 - data.labels)
    assert cache.fitted("knn", {}, relabelled) is not cache.fitted("knn", {}, data)
