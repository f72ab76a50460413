"""kNN router: a query's score for a model is that model's solve rate among its neighbours."""

from __future__ import annotations

from sklearn.neighbors import NearestNeighbors

from router.estimator_arrays import matrix_arrays, matrix_from_arrays, prefixed, unprefixed

from router.features import make_features
from router.routers import Router, register_router


@register_router("knn")
class KnnRouter(Router):
    light = True

    def __init__(self, n_neighbors: int = 20, features: str = "tfidf"):
        self.n_neighbors = n_neighbors
        self.features = features

    def _fit(self, queries, labels):
        self.featurizer_ = make_features(self.features).fit(queries)
        self.labels_ = labels
        self._index(self.featurizer_.transform(queries))

    def _index(self, x) -> None:
        k = min(self.n_neighbors, x.shape[0])
        self.index_ = NearestNeighbors(n_neighbors=k, metric="cosine").fit(x)

    def _state(self):
        return {"labels": self.labels_, **prefixed("points", matrix_arrays(self.index_._fit_X))}

    def _restore(self, arrays):
        self.labels_ = arrays["labels"]
        self._index(matrix_from_arrays(unprefixed("points", arrays)))

    def _predict(self, queries):
        _, neighbours = self.index_.kneighbors(self.featurizer_.transform(queries))
        return self.labels_[neighbours].mean(axis=1)
