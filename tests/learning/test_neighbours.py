"""`CosineIndex` gives scikit-learn's brute-force cosine neighbours (the kNN router's old path), ties included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from lm_routing.learning.features import tfidf
from lm_routing.reading.logs import read_score_table
from lm_routing.learning.neighbours import CosineIndex
from lm_routing.learning.routers import make_router

K = 20


def reference_and_fast(train, test, k: int = K, working_memory_mb: int = 256):
    reference = NearestNeighbors(n_neighbors=k, metric="cosine").fit(train)
    expected = reference.kneighbors(test, return_distance=False)
    return expected, CosineIndex(train, reference, working_memory_mb).kneighbors(test, k)


def assert_same_neighbours(expected: np.ndarray, got: np.ndarray) -> None:
    # the order within a set can differ only among equal distances; the router averages the set
    np.testing.assert_array_equal(np.sort(expected, axis=1), np.sort(got, axis=1))


@pytest.mark.parametrize("dataset", ["gsm8k", "mmlu"])
def test_routerdc_split_same_neighbours_and_scores(shared_data, dataset):
    folder = shared_data / "routing" / "routerdc-7llm"
    train = read_score_table(folder / f"{dataset}_train.json", "train")
    test = read_score_table(folder / f"{dataset}_test.json", "test")
    features = tfidf().fit(train.queries)
    expected, got = reference_and_fast(features.transform(train.queries), features.transform(test.queries))
    assert_same_neighbours(expected, got)
    router = make_router("knn").fit(list(train.queries), train.labels)
    np.testing.assert_array_equal(router.predict_proba(list(test.queries)), train.labels[expected].mean(axis=1))


def test_ties_and_duplicates_follow_scikit_learn():
    """Duplicated training rows and queries with no word in common tie at the k-th place: scikit-learn decides."""
    words = "alpha beta gamma delta".split()
    train_text = [f"{words[i % 4]} {words[(i // 4) % 4]}" for i in range(60)] + ["zeta"] * 5
    test_text = ["alpha beta", "omega", "gamma", "zeta", "alpha"]
    features = tfidf().fit(train_text)
    index_rows, queries = features.transform(train_text), features.transform(test_text)
    expected, got = reference_and_fast(index_rows, queries, k=7)
    assert_same_neighbours(expected, got)
    index = CosineIndex(index_rows, NearestNeighbors(n_neighbors=7, metric="cosine").fit(index_rows))
    assert len(index._top(index._similarities(index._split(queries)), 7)[1]) > 0  # the fallback did run


@pytest.mark.parametrize("working_memory_mb", [0, 1])
def test_blocks_and_dense_features(working_memory_mb):
    """One-row blocks (0 MiB budget) and dense embeddings, with near-duplicate rows, still match."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 32))
    train[200:] = train[:200] + rng.normal(scale=1e-9, size=(200, 32))  # pairs closer than float32 can tell
    test = rng.normal(size=(50, 32))
    assert_same_neighbours(*reference_and_fast(train, test, working_memory_mb=working_memory_mb))
    sparse = sp.random(300, 2000, density=0.01, random_state=1, format="csr")
    assert_same_neighbours(*reference_and_fast(sparse, sparse[:40], working_memory_mb=working_memory_mb))


def test_fewer_points_than_k():
    train = sp.random(5, 50, density=0.2, random_state=2, format="csr")
    expected, got = reference_and_fast(train, train, k=5)
    np.testing.assert_array_equal(expected, got)



def test_leave_one_out_reuses_the_index_and_equals_a_refit_without_the_query():
    """kNN's leave-one-out scores (one index, the query's own row dropped) equal scikit-learn's brute force
    over every other training row, on the same features; a duplicate query is the other's nearest neighbour."""
    from sklearn.neighbors import NearestNeighbors

    from lm_routing.learning.routers import make_router

    rng = np.random.default_rng(4)
    words = np.array([f"w{i}" for i in range(60)])
    queries = [" ".join(rng.choice(words, 6, replace=False)) for _ in range(300)]
    queries[299] = queries[0]  # a duplicate pair
    labels = rng.integers(0, 2, size=(300, 3)).astype(float)
    router = make_router("knn", n_neighbors=7).fit(queries, labels)
    points, compared = router.index_._fit_X, 0
    rows = np.arange(0, 300, 3)
    for row, got in zip(rows, router.leave_one_out(rows)):
        others = np.setdiff1d(np.arange(300), [row])
        distance, found = NearestNeighbors(n_neighbors=8, metric="cosine").fit(points[others]).kneighbors(points[row])
        if distance[0, 7] - distance[0, 6] > 1e-9:  # the 7th is not tied with the 8th: one exact answer
            np.testing.assert_allclose(got, labels[others[found[0, :7]]].mean(axis=0))
            compared += 1
    assert compared >= len(rows) // 2
    assert router.fast_index_.kneighbors(points[[0]], 2)[0].tolist() in ([0, 299], [299, 0])  # itself, then the duplicate


def test_queries_of_a_few_kinds_take_grouped_products_and_the_same_neighbours():
    """Queries of four kinds with words of their own hold few of the frequent columns each: the index sorts them into
    groups whose dense product skips the columns no query of the group holds, and still gives scikit-learn's sets.
    Working memory of 1 MiB gives several blocks of whole groups."""
    rng = np.random.default_rng(5)
    kinds = [[f"k{kind}w{i}" for i in range(12)] for kind in range(4)]
    common = ["the", "a", "of", "is"]
    texts = [" ".join([*rng.choice(kinds[kind], 5, replace=False), *rng.choice(common, 2), f"n{rng.integers(5000)}"])
             for kind in rng.integers(0, 4, size=3000)]
    features = tfidf().fit(texts[:1000])
    train, test = features.transform(texts[:1000]), features.transform(texts[1000:])
    reference = NearestNeighbors(n_neighbors=K, metric="cosine").fit(train)
    index = CosineIndex(train, reference, working_memory_mb=1)
    assert index._grouped_order(index._split(test)[0]) is not None  # the grouped products do run
    assert_same_neighbours(reference.kneighbors(test, return_distance=False), index.kneighbors(test, K))


def test_medium_columns_add_in_place_and_without_scipys_kernel(monkeypatch):
    """Columns between the rare and the frequent ones are added as sparse queries times dense index rows, into
    the similarity buffer itself; without scipy's kernel (a private name) the product is added apart, equally."""
    import sys

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)]
    weights = 1 / np.arange(1, 301)  # Zipf-like: a few frequent words, some in between, many rare
    texts = [" ".join(rng.choice(words, 12, p=weights / weights.sum())) for _ in range(1200)]
    features = tfidf().fit(texts[:900])
    train, test = features.transform(texts[:900]), features.transform(texts[900:])
    reference = NearestNeighbors(n_neighbors=K, metric="cosine").fit(train)
    index = CosineIndex(train, reference)
    assert len(index.medium_columns) and len(index.dense_columns) and len(index.rare_columns)
    expected = reference.kneighbors(test, return_distance=False)
    assert_same_neighbours(expected, index.kneighbors(test, K))
    split = index._split(test)
    buffer = np.zeros((test.shape[0], index.n_index), dtype=np.float32)
    assert np.shares_memory(index._similarities(split, buffer), buffer)  # written into the buffer given
    with_kernel = index._similarities(split).copy()
    monkeypatch.setitem(sys.modules, "scipy.sparse._sparsetools", None)  # its import fails
    assert_same_neighbours(expected, index.kneighbors(test, K))
    np.testing.assert_allclose(index._similarities(split), with_kernel, atol=index.tie_tolerance)
    exact = test.toarray() @ train.toarray().T  # unit rows: cosine similarities
    np.testing.assert_allclose(with_kernel, exact, atol=index.tie_tolerance / 2)
