"""Out-of-fold router scores and fitted routers, computed once and shared.

Every fitted policy (prediction, stacked, fallback, ...) and `auto`'s inner
cross-validation need the same thing: each training query scored by a router
fit on the other folds. `FitCache` computes it once per (router, params,
queries, labels, folds, seed) and hands the same array to every consumer; the
folds of a light router are fit in parallel worker processes (joblib, as
scikit-learn does). Fits are seeded, so any worker count gives the same scores.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

from lm_routing.data import RoutingData
from lm_routing.learning.features import SentenceEmbeddings, make_features
from lm_routing.learning.routers import ROUTERS, Router, make_router

PARALLEL_MIN_QUERIES = 500  # below this, starting worker processes costs more than the fits they share
EXACT_POLICY_FIT_MAX = 20_000  # training queries up to which fitted policies learn from every k-fold out-of-fold score
POLICY_SAMPLE = 10_000  # beyond it, they learn from this many seeded held-out queries (see FitCache.policy_fit_scores)


def _fold_scores(name: str, params: dict, queries: list[str], labels: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Scores of the `held_out` positions from router `name` fit on every other position."""
    fit = np.setdiff1d(np.arange(len(queries)), held_out)
    router = make_router(name, **params).fit([queries[i] for i in fit], labels[fit])
    return router.predict_proba([queries[i] for i in held_out])


def is_light(name: str) -> bool:
    """True for a registered router that fits in seconds on CPU (class attribute `light`)."""
    return bool(getattr(ROUTERS.get(name), "light", False))


def cross_fit_scores(name: str, params: dict, data: RoutingData, folds: int, seed: int, n_jobs: int | None = -1) -> np.ndarray:
    """(n_queries, n_models) out-of-fold P(solve) for every query of `data` (seeded k-fold cross-fitting).

    `n_jobs` worker processes (joblib; -1: one per core) fit the folds of a light router at
    once; heavy routers (GPU, large memory) and small inputs run in this process.
    """
    return held_out_scores(name, params, data, [held_out for _, held_out in data.kfold(folds, seed)], n_jobs)


def held_out_scores(name: str, params: dict, data: RoutingData, held_outs: list[np.ndarray],
                    n_jobs: int | None = -1) -> np.ndarray:
    """(n_queries, n_models) P(solve): the rows of each of `held_outs` (disjoint positions) from router `name`
    fit on every other query of `data`; rows in none of them stay 0. Parallel as `cross_fit_scores`."""
    queries, scores = list(data.queries), np.zeros(data.labels.shape)
    # embeddings are cached per process: workers would each re-encode every query
    embedded = isinstance(make_features(make_router(name, **params).get_params().get("features", "tfidf")), SentenceEmbeddings)
    workers = n_jobs if is_light(name) and not embedded and data.n_queries >= PARALLEL_MIN_QUERIES else 1
    from joblib import Parallel, delayed  # imported when folds run in parallel: keeps the CLI's start-up light

    with warnings.catch_warnings():  # loky replaces a worker whose memory grew (torch routers): harmless, not the user's to fix
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given", category=UserWarning)
        parts = Parallel(n_jobs=workers)(delayed(_fold_scores)(name, params, queries, data.labels, h) for h in held_outs)
    for held_out, part in zip(held_outs, parts):
        scores[held_out] = part
    return scores


def _data_key(data: RoutingData) -> str:
    """A digest of the queries' ids, texts and labels: equal digests, equal training inputs."""
    digest = hashlib.sha256()
    for text in (*data.query_ids, *data.queries):
        digest.update(text.encode())
        digest.update(b"\0")
    digest.update(np.ascontiguousarray(data.labels).tobytes())
    return digest.hexdigest()


class FitCache:
    """Fitted routers and out-of-fold scores, keyed by router, params and training data, reused within a process."""

    def __init__(self, n_jobs: int | None = -1):
        self.n_jobs = n_jobs
        self._fitted: dict[tuple, Router] = {}
        self._out_of_fold: dict[tuple, np.ndarray] = {}

    @staticmethod
    def _key(name: str, params: dict, data: RoutingData) -> tuple:
        # every hyper-parameter, defaults included: knn with {} and with {"features": "tfidf"} is one router
        resolved = make_router(name, **params).get_params()
        return name, tuple(sorted((k, repr(v)) for k, v in resolved.items())), _data_key(data)

    def fitted(self, name: str, params: dict, data: RoutingData) -> Router:
        """Router `name` fit on every query of `data` (fit once, then reused)."""
        key = self._key(name, params, data)
        if key not in self._fitted:
            self._fitted[key] = make_router(name, **params).fit(list(data.queries), data.labels)
        return self._fitted[key]

    def out_of_fold(self, name: str, params: dict, data: RoutingData, folds: int, seed: int) -> np.ndarray:
        """`cross_fit_scores` of `data` (computed once, then reused); do not modify the returned array."""
        key = (*self._key(name, params, data), folds, seed)
        if key not in self._out_of_fold:
            self._out_of_fold[key] = cross_fit_scores(name, params, data, folds, seed, self.n_jobs)
        return self._out_of_fold[key]

    def policy_fit_scores(self, name: str, params: dict, data: RoutingData, folds: int, seed: int
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, labels) a fitted policy learns from: router `name`'s held-out P(solve) on training queries of
        `data` and their labels, (rows, n_models) each.

        Up to EXACT_POLICY_FIT_MAX queries: `out_of_fold` on every query (exact k-fold, as before). Beyond,
        a seeded sample of POLICY_SAMPLE queries (a 10-100-input regression needs no more): a router with
        `leave_one_out` (kNN) scores them from the one index already fit on all of `data`, each query's own
        row left out; any other router is refit `folds` times, each fold of the sample held out.
        """
        if data.n_queries <= EXACT_POLICY_FIT_MAX:
            return self.out_of_fold(name, params, data, folds, seed), data.labels
        rows = np.sort(np.random.default_rng(seed).choice(data.n_queries, POLICY_SAMPLE, replace=False))
        router = self.fitted(name, params, data)
        if hasattr(router, "leave_one_out"):
            return router.leave_one_out(rows), data.labels[rows]
        held_outs = [np.sort(part) for part in np.array_split(np.random.default_rng(seed).permutation(rows), folds)]
        return held_out_scores(name, params, data, held_outs, self.n_jobs)[rows], data.labels[rows]
