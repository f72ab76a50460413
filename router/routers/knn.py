"""kNN router: a query's score for a model is that model's solve rate among its neighbours."""

from __future__ import annotations

from router.features import make_features
from router.routers import Router, register_router


@register_router("knn")
class KnnRouter(Router):
    """Cosine kNN over `features`: exact, scikit-learn's brute-force neighbours (ties included), in bounded memory."""

    def __init__(self, n_neighbors: int = 20, features: str = "tfidf"):
        self.n_neighbors = n_neighbors
        self.features = features

    def _fit(self, queries, labels):
        from sklearn.neighbors import NearestNeighbors

        self.featurizer_ = make_features(self.features).fit(queries)
        self.labels_ = labels
        k = min(self.n_neighbors, len(queries))
        self.index_ = NearestNeighbors(n_neighbors=k, metric="cosine").fit(self.featurizer_.transform(queries))

    def _predict(self, queries):
        from router.neighbours import CosineIndex

        if getattr(self, "fast_index_", None) is None:  # built on first use: routers saved before it lack it
            self.fast_index_ = CosineIndex(self.index_._fit_X, self.index_)
        neighbours = self.fast_index_.kneighbors(self.featurizer_.transform(queries), self.index_.n_neighbors)
        return self.labels_[neighbours].mean(axis=1)
