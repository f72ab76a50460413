"""Cluster router: k-means over query features; a query's score for a model is that model's solve rate in its cluster."""

from __future__ import annotations

import numpy as np

from lm_routing.data import validation_split
from lm_routing.learning.estimator_arrays import kmeans_arrays, kmeans_from_arrays, prefixed, svd_arrays, svd_from_arrays, unprefixed
from lm_routing.learning.features import make_features
from lm_routing.learning.routers.base import Router

K_GRID = (2, 4, 8, 16, 32)  # cluster counts tried by n_clusters="auto"
MIN_CLUSTER_SIZE = 5  # queries: "auto" tries no k that leaves fewer per cluster on average


class ClusterRouter(Router):
    """k-means (seeded) over `features`; sparse features are first cut to `svd_dims` LSA
    dimensions (a few topic directions suffice for at most 32 clusters; more mostly add noise).

    A cluster's score for a model is its solve rate there, smoothed toward the model's overall
    rate by `prior_weight` pseudo-queries. `n_clusters`: an int, or "auto": the k of K_GRID whose
    clusters route best by argmax on a seeded 20% of the training queries held out, refit on all.
    """

    name = "cluster"  # registered by lm_routing.learning.routers.builtin

    light = True

    def __init__(self, n_clusters: int | str = "auto", features: str = "tfidf", svd_dims: int = 20,
                 prior_weight: float = 1.0, seed: int = 0):
        self.n_clusters = n_clusters
        self.features = features
        self.svd_dims = svd_dims
        self.prior_weight = prior_weight
        self.seed = seed

    def _fit(self, queries, labels):
        self.featurizer_ = make_features(self.features).fit(queries)
        x = self.featurizer_.transform(queries)
        self.n_clusters_ = self._choose_k(x, labels) if self.n_clusters == "auto" else int(self.n_clusters)
        self.clusters_, self.rates_ = self._cluster(x, labels, self.n_clusters_)

    def _predict(self, queries):
        return self.rates_[self.clusters_.predict(self.featurizer_.transform(queries))]

    def _state(self):
        arrays = {"n_clusters": np.asarray(self.n_clusters_), "rates": self.rates_,
                  **prefixed("kmeans", kmeans_arrays(self.clusters_[-1]))}
        if len(self.clusters_) > 1:  # the LSA steps in front of k-means on sparse features
            arrays.update(prefixed("svd", svd_arrays(self.clusters_[0])))
        return arrays

    def _restore(self, arrays):
        from sklearn.cluster import KMeans
        from sklearn.decomposition import TruncatedSVD
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer

        self.n_clusters_, self.rates_ = int(arrays["n_clusters"]), arrays["rates"]
        kmeans = kmeans_from_arrays(unprefixed("kmeans", arrays), KMeans(n_clusters=len(self.rates_), n_init=4, random_state=self.seed))
        steps = [kmeans]
        if "svd.components" in arrays:
            svd = svd_from_arrays(unprefixed("svd", arrays), TruncatedSVD(len(arrays["svd.components"]), random_state=self.seed))
            steps = [svd, Normalizer().fit(np.zeros((1, svd.components_.shape[0]))), kmeans]
        self.clusters_ = make_pipeline(*steps)

    def _cluster(self, x, labels: np.ndarray, k: int) -> tuple[object, np.ndarray]:
        """(fitted k-means pipeline, (k, n_models) smoothed solve rates per cluster)."""
        import warnings

        import scipy.sparse  # imported when fitted: keeps the CLI's start-up light
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.decomposition import TruncatedSVD
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer
        from threadpoolctl import threadpool_limits

        k = min(k, x.shape[0])
        steps = [KMeans(n_clusters=k, n_init=4, random_state=self.seed)]
        if scipy.sparse.issparse(x):  # k-means is slow and poor in 50k sparse dimensions
            dims = min(self.svd_dims, x.shape[1] - 1, x.shape[0] - 1)
            steps = [TruncatedSVD(dims, random_state=self.seed), Normalizer(), *steps] if dims > 0 else steps
        with threadpool_limits(1), warnings.catch_warnings():  # small matrices: extra threads only wait (100x when busy)
            # queries whose features coincide (long prompts cut to one shared few-shot prefix) make fewer clusters
            # than asked: the rates below then cover the clusters found, which is all this router needs
            warnings.filterwarnings("ignore", message="Number of distinct clusters", category=ConvergenceWarning)
            pipeline = make_pipeline(*steps).fit(x)
        members = np.eye(k)[pipeline[-1].labels_]  # (n_queries, k) one-hot cluster membership
        prior = self.prior_weight * labels.mean(axis=0)
        rates = (members.T @ labels + prior) / (members.sum(axis=0)[:, None] + self.prior_weight)
        return pipeline, rates

    def _choose_k(self, x, labels: np.ndarray) -> int:
        """The k of K_GRID with the best held-out argmax-routing accuracy (the smallest on ties)."""
        training, validation = validation_split(x.shape[0], 0.2, self.seed)
        grid = [k for k in K_GRID if k <= max(K_GRID[0], len(training) // MIN_CLUSTER_SIZE)]
        if len(validation) == 0:
            return grid[0]
        accuracy = []
        for k in grid:
            clusters, rates = self._cluster(x[training], labels[training], k)
            chosen = rates[clusters.predict(x[validation])].argmax(axis=1)
            accuracy.append(labels[validation, chosen].mean())
        return grid[int(np.argmax(accuracy))]
