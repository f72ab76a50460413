"""Text features shared by every light router: one home, no re-implementations."""

from __future__ import annotations

from collections.abc import Callable

from sklearn.feature_extraction.text import TfidfVectorizer

from router.data import RoutingInputError


def tfidf() -> TfidfVectorizer:
    """Word 1-2 gram TF-IDF with sublinear term frequency (sparse, L2-normalised rows)."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", max_features=50_000)


FEATURES: dict[str, Callable[[], object]] = {"tfidf": tfidf}


def make_features(name: str):
    """A fresh, unfitted featurizer (`fit`/`transform` on lists of query strings)."""
    if name not in FEATURES:
        raise RoutingInputError(f"unknown features {name!r}; choose one of: {', '.join(sorted(FEATURES))}")
    return FEATURES[name]()
