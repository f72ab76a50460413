"""The cluster router beyond the shared contract: choosing k on held-out queries."""

from __future__ import annotations

import numpy as np

from lm_routing.learning.routers import make_router

TOPICS = [
    "apple pear banana grape melon cherry",
    "court judge law lawyer trial verdict",
    "engine wheel brake gear motor clutch",
    "star planet orbit comet galaxy moon",
]


def four_topics(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Queries of 5 words from one of 4 disjoint vocabularies; model j solves exactly topic j."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 4, size=n)
    queries = [" ".join(rng.choice(TOPICS[t].split(), size=5)) for t in topic]
    return queries, np.eye(4)[topic]


def test_auto_picks_the_four_topics_and_routes_by_them():
    queries, labels = four_topics(400)
    router = make_router("cluster").fit(queries[:300], labels[:300])
    assert router.n_clusters_ == 4
    chosen = router.predict_proba(queries[300:]).argmax(axis=1)
    assert np.mean(labels[300:][np.arange(100), chosen]) == 1.0


def test_a_fixed_k_is_kept():
    queries, labels = four_topics(100)
    assert make_router("cluster", n_clusters=8).fit(queries, labels).n_clusters_ == 8


def test_queries_whose_features_coincide_fit_without_a_warning():
    """Long prompts cut to one shared few-shot prefix give identical features: k-means then finds fewer clusters
    than asked, which the router handles (rates per cluster found); scikit-learn's ConvergenceWarning is not
    the user's to act on, so none reaches them."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from lm_routing.learning.routers import ROUTERS

    queries = ["the same question about apples", "another one on pears and plums"] * 15
    labels = (np.random.default_rng(0).random((30, 3)) < 0.5).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        router = ROUTERS["cluster"](features="tfidf", n_clusters=8).fit(queries, labels)
    scores = router.predict_proba(queries[:2])
    assert scores.shape == (2, 3) and not np.allclose(scores[0], scores[1])
