"""TF-IDF features over query texts: scikit-learn's vectorizer, with a one-line error for queries without words
and a faster transform of new queries (the same matrix, bit for bit).

Its own module so that scikit-learn is imported when TF-IDF is used, not when `router` is.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from lm_routing.data import RoutingInputError

# the vectorizer settings a saved router may carry (lm_routing.learning.features.featurizer_state), with their JSON types
SAVED_PARAMS = {"analyzer": str, "ngram_range": list, "lowercase": bool, "sublinear_tf": bool, "token_pattern": str,
                "max_features": int}


class QueryTfidf(TfidfVectorizer):
    """TF-IDF whose fit on queries without a single word says so in one line (sklearn: "empty vocabulary")."""

    def fit(self, raw_documents, y=None):
        try:
            return super().fit(raw_documents, y)
        except ValueError as error:
            if "empty vocabulary" not in str(error):
                raise
        raise RoutingInputError(
            f"the {len(raw_documents)} training queries have no words (empty or punctuation only), so TF-IDF "
            "features have nothing to learn; check the inputs' question text or use «features» minilm"
        )

    def transform(self, raw_documents):
        """scikit-learn's transform, with the counting of a word analyzer's known terms done in bulk.

        scikit-learn counts each term through a per-term dict update (`_count_vocab`); for the settings the
        routers use (word n-grams of a token pattern, optional lowercasing, nothing else), the terms of every
        document are looked up in one pass and counted by scipy, and the counts go through the fitted
        `_tfidf` exactly as scikit-learn's own would: the matrices are equal (tests/learning/test_features.py).
        Any other setting, an unfitted vectorizer, documents that are not a list, tuple or array (an iterator
        would be used up by the check), or a document that is not a str, takes scikit-learn's path.
        """
        if not self._bulk_countable(raw_documents):
            return super().transform(raw_documents)
        return self._tfidf.transform(self._known_term_counts(raw_documents), copy=False)

    def _bulk_countable(self, raw_documents) -> bool:
        return (self.analyzer == "word" and self.input == "content" and self.preprocessor is None
                and self.tokenizer is None and self.stop_words is None and self.strip_accents is None
                and not self.binary and self.token_pattern is not None and hasattr(self, "vocabulary_")
                and re.compile(self.token_pattern).groups <= 1 and isinstance(raw_documents, (list, tuple, np.ndarray))
                and all(type(doc) is str for doc in raw_documents))

    def _known_term_counts(self, documents) -> sp.csr_matrix:
        """(documents, vocabulary) counts of the fitted terms: what scikit-learn's `_count_vocab(fixed_vocab=True)`
        returns (same dtype, sorted indices)."""
        find_tokens = re.compile(self.token_pattern).findall
        lookup = self.vocabulary_.get
        low, high = self.ngram_range
        term_ids: list[int] = []
        ends = np.empty(len(documents) + 1, dtype=np.int64)
        ends[0] = 0
        for position, document in enumerate(documents):
            tokens = find_tokens(document.lower() if self.lowercase else document)
            terms = tokens if low == 1 else []
            for n in range(max(low, 2), high + 1):
                terms = terms + [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
            term_ids.extend(found for found in map(lookup, terms) if found is not None)
            ends[position + 1] = len(term_ids)
        rows = np.repeat(np.arange(len(documents), dtype=np.int64), np.diff(ends))
        counts = sp.csr_matrix((np.ones(len(term_ids), dtype=self.dtype), (rows, np.asarray(term_ids, dtype=np.int64))),
                               shape=(len(documents), len(self.vocabulary_)), dtype=self.dtype)
        counts.sum_duplicates()  # also sorts each row's indices, as scikit-learn's sort_indices does
        return counts

    def saved_params(self) -> dict:
        """The settings that shape its features, JSON-ready (`SAVED_PARAMS`)."""
        params = self.get_params()
        return {key: list(params[key]) if key == "ngram_range" else params[key] for key in SAVED_PARAMS}


def restored_tfidf(params: dict) -> QueryTfidf:
    """An unfitted QueryTfidf with `saved_params()` settings; ValueError for any other key or type."""
    if set(params) != set(SAVED_PARAMS) or not all(
            isinstance(params[key], kind) or (key == "max_features" and params[key] is None)
            for key, kind in SAVED_PARAMS.items()):
        raise ValueError(f"TF-IDF settings {sorted(params)[:10]} are not the ones lm-routing saves")
    low, high = params["ngram_range"] if len(params["ngram_range"]) == 2 else (0, 0)
    if not (type(low) is int and type(high) is int and 1 <= low <= high <= 10):
        raise ValueError("TF-IDF ngram_range must be two whole numbers 1 <= low <= high <= 10")
    if params["analyzer"] not in ("word", "char", "char_wb"):
        raise ValueError(f"TF-IDF analyzer {params['analyzer'][:20]!r} is not one lm-routing saves")
    return QueryTfidf(**{**params, "ngram_range": (low, high)})
