"""TF-IDF features over query texts: scikit-learn's vectorizer, with a one-line error for queries without words
and a faster transform of new queries (the same matrix, bit for bit).

Its own module so that scikit-learn is imported when TF-IDF is used, not when `router` is.
"""

from __future__ import annotations

import re
from itertools import repeat

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from lm_routing.data import RoutingInputError

# token patterns whose findall is the maximal runs of word characters at least this long: in a document of ASCII
# characters alone these are [A-Za-z0-9_], so mapping every other byte to a space (and A-Z to a-z when lowercasing)
# and splitting on spaces gives the same tokens several times faster than the regex scan
WORD_RUNS = {r"(?u)\b\w+\b": 1, r"(?u)\b\w\w+\b": 2}
_ASCII_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_KEEP_WORDS = bytes(byte if byte in _ASCII_WORD else 32 for byte in range(256))
_LOWER_WORDS = bytes(byte + 32 if 65 <= byte <= 90 else byte for byte in _KEEP_WORDS)

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
        shortest = WORD_RUNS.get(self.token_pattern)
        words = _LOWER_WORDS if self.lowercase else _KEEP_WORDS
        lookup = self.vocabulary_.get
        low, high = self.ngram_range
        lowercase = self.lowercase
        join = " ".join
        term_ids: list[int] = []  # every term's column, -1 where it is not in the vocabulary
        ends = [0]
        for document in documents:
            if shortest and document.isascii():
                tokens = document.encode("ascii").translate(words).decode("ascii").split()
                if shortest > 1:
                    tokens = [token for token in tokens if len(token) >= shortest]
            else:
                tokens = find_tokens(document.lower() if lowercase else document)
            for n in range(low, high + 1):  # each n-gram: n tokens in a row joined by one space, as scikit-learn's
                term_ids += map(lookup, tokens if n == 1 else map(join, zip(*(tokens[i:] for i in range(n)))), repeat(-1))
            ends.append(len(term_ids))
        ids = np.array(term_ids, dtype=np.int64)
        known = ids >= 0
        indptr = np.concatenate([[0], np.cumsum(known)])[ends]  # known terms before each document's end
        counts = sp.csr_matrix((np.ones(indptr[-1], dtype=self.dtype), ids[known], indptr),
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
