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
