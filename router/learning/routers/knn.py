"""kNN router: a query's score for a model is that model's solve rate among its neighbours."""

from __future__ import annotations

import numpy as np

from lm_routing.learning.estimator_arrays import matrix_arrays, matrix_from_arrays, prefixed, unprefixed
from lm_routing.learning.features import make_features
from lm_routing.learning.routers.base import Router


class KnnRouter(Router):
    """Cosine kNN over `features`: exact, scikit-learn's brute-force neighbours (ties included), in bounded memory."""

    name = "knn"  # registered by lm_routing.learning.routers.builtin

    light = True

    def __init__(self, n_neighbors: int = 20, features: str = "tfidf"):
        self.n_neighbors = n_neighbors
        self.features = features

    def _fit(self, queries, labels):
        self.featurizer_ = make_features(self.features).fit(queries)
        self.labels_ = labels
        self._index(self.featurizer_.transform(queries))

    def _index(self, x) -> None:
        from sklearn.neighbors import NearestNeighbors  # imported when fitted: keeps the CLI's start-up light

        k = min(self.n_neighbors, x.shape[0])
        self.index_ = NearestNeighbors(n_neighbors=k, metric="cosine").fit(x)

    def _state(self):
        return {"labels": self.labels_, **prefixed("points", matrix_arrays(self.index_._fit_X))}

    def _restore(self, arrays):
        self.labels_ = arrays["labels"]
        self._index(matrix_from_arrays(unprefixed("points", arrays)))

    def _predict(self, queries):
        from lm_routing.learning.neighbours import CosineIndex

        if getattr(self, "fast_index_", None) is None:  # built on first use: routers saved before it lack it
            self.fast_index_ = CosineIndex(self.index_._fit_X, self.index_)
        neighbours = self.fast_index_.kneighbors(self.featurizer_.transform(queries), self.index_.n_neighbors)
        return self.labels_[neighbours].mean(axis=1)

    def leave_one_out(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), n_models) P(solve) of the training queries at positions `rows`, each from its neighbours
        among every *other* training query: the fitted index's k+1 nearest minus the query itself.

        One index serves every held-out query (no refit per fold); the features are the ones fit on all
        training queries. Where more than k+1 points tie with the query itself (duplicates), the last is dropped.
        """
        from lm_routing.learning.neighbours import CosineIndex

        points = self.index_._fit_X
        k = min(self.index_.n_neighbors, points.shape[0] - 1)
        if getattr(self, "fast_index_", None) is None:
            self.fast_index_ = CosineIndex(points, self.index_)
        rows = np.asarray(rows, dtype=np.intp)
        found = self.fast_index_.kneighbors(points[rows], k + 1)
        is_self = found == rows[:, None]
        drop = np.where(is_self.any(axis=1), np.argmax(is_self, axis=1), k)  # its own position, else the last
        keep = np.ones(found.shape, dtype=bool)
        keep[np.arange(len(rows)), drop] = False
        return self.labels_[found[keep].reshape(len(rows), k)].mean(axis=1)
