"""Out-of-fold scores: the same in worker processes as in this one, computed once per router and data."""

from __future__ import annotations

import dataclasses

import numpy as np

from lm_routing.judging.crossfit import PARALLEL_MIN_QUERIES, FitCache, cross_fit_scores
from lm_routing.data import RoutingData


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


def test_policy_fit_scores_exact_up_to_the_limit_then_a_seeded_sample(monkeypatch):
    import lm_routing.judging.crossfit as crossfit

    data, cache = toy(200), FitCache(n_jobs=1)
    scores, labels = cache.policy_fit_scores("knn", {}, data, 5, seed=0)
    assert scores is cache.out_of_fold("knn", {}, data, 5, seed=0) and labels is data.labels  # exact, as before
    monkeypatch.setattr(crossfit, "EXACT_POLICY_FIT_MAX", 100)
    monkeypatch.setattr(crossfit, "POLICY_SAMPLE", 40)
    knn, knn_labels = cache.policy_fit_scores("knn", {}, data, 5, seed=0)
    rows = np.sort(np.random.default_rng(0).choice(200, 40, replace=False))
    np.testing.assert_array_equal(knn, cache.fitted("knn", {}, data).leave_one_out(rows))  # the one index, reused
    np.testing.assert_array_equal(knn_labels, data.labels[rows])
    lr, lr_labels = cache.policy_fit_scores("lr", {}, data, 4, seed=0)
    assert lr.shape == (40, 3) and np.array_equal(lr_labels, data.labels[rows])
    alpha = np.array(["alpha" in data.queries[i] for i in rows])
    assert lr[alpha, 0].mean() > lr[~alpha, 0].mean() + 0.3  # each sampled query scored by a fit that did not see it
