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

    def _tokens(self, documents):
        """Each document's tokens, as scikit-learn's analyzer finds them (before n-grams)."""
        find_tokens = re.compile(self.token_pattern).findall
        shortest = WORD_RUNS.get(self.token_pattern)
        words = _LOWER_WORDS if self.lowercase else _KEEP_WORDS
        lowercase = self.lowercase
        for document in documents:
            if shortest and document.isascii():
                tokens = document.encode("ascii").translate(words).decode("ascii").split()
                if shortest > 1:
                    tokens = [token for token in tokens if len(token) >= shortest]
            else:
                tokens = find_tokens(document.lower() if lowercase else document)
            yield tokens

    def _known_term_counts(self, documents) -> sp.csr_matrix:
        """(documents, vocabulary) counts of the fitted terms: what scikit-learn's `_count_vocab(fixed_vocab=True)`
        returns (same dtype, sorted indices)."""
        table = self._term_codes() if self.token_pattern in WORD_RUNS else None
        if table is not None:
            return self._counts_by_codes(documents, *table)
        lookup = self.vocabulary_.get
        low, high = self.ngram_range
        join = " ".join
        term_ids: list[int] = []  # every term's column, -1 where it is not in the vocabulary
        ends = [0]
        for tokens in self._tokens(documents):
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

    def _term_codes(self) -> tuple[dict, int, dict] | None:
        """The fitted terms as numbers, built once per vocabulary: (token -> id over the terms' tokens, the number
        of ids, {n: (sorted codes of the n-token terms, their columns)}), where a term's code is its token ids as
        digits of that base; None where a code of `ngram_range`'s longest terms would not fit 63 bits.

        For token patterns whose tokens hold no space (WORD_RUNS): a term is then its tokens joined by one space."""
        cached = getattr(self, "_term_codes_", None)
        if cached is not None and cached[0] is self.vocabulary_:
            return cached[1]
        low, high = self.ngram_range
        token_id: dict[str, int] = {}
        terms: dict[int, tuple[list, list]] = {n: ([], []) for n in range(low, high + 1)}
        for term, column in self.vocabulary_.items():
            tokens = term.split(" ")
            if low <= len(tokens) <= high:  # other terms (a vocabulary given by hand) are never counted
                ids, columns = terms[len(tokens)]
                ids += [token_id.setdefault(token, len(token_id)) for token in tokens]
                columns.append(column)
        base = max(len(token_id), 1)
        table = None
        if base ** high < 2 ** 63:
            by_length = {}
            for n, (ids, columns) in terms.items():
                codes = np.array(ids, dtype=np.int64).reshape(-1, n) @ (base ** np.arange(n - 1, -1, -1, dtype=np.int64))
                order = np.argsort(codes, kind="stable")
                by_length[n] = (codes[order], np.array(columns, dtype=np.int64)[order])
            table = (token_id, base, by_length)
        self._term_codes_ = (self.vocabulary_, table)
        return table

    def _counts_by_codes(self, documents, token_id: dict, base: int, by_length: dict) -> sp.csr_matrix:
        """`_known_term_counts` from token ids: each document's tokens are looked up once; its n-grams are codes
        of n ids in a row (one document's), found among the terms' sorted codes."""
        get = token_id.get
        token_ids: list[int] = []  # -1 where a token is in no term
        lengths = []
        for tokens in self._tokens(documents):
            token_ids += map(get, tokens, repeat(-1))
            lengths.append(len(tokens))
        ids = np.array(token_ids, dtype=np.int64)
        document = np.repeat(np.arange(len(lengths)), lengths)
        rows, columns = [], []
        for n, (codes, term_columns) in by_length.items():
            starts = len(ids) - n + 1
            if starts <= 0 or not len(codes):
                continue
            code = np.zeros(starts, dtype=np.int64)
            known = document[:starts] == document[n - 1:]  # the n tokens are one document's
            for i in range(n):
                part = ids[i: i + starts]
                known &= part >= 0
                code = code * base + part
            first = np.flatnonzero(known)
            if n == 1:  # a token's code is its id: one gather
                column_of = np.full(base, -1, dtype=np.int64)
                column_of[codes] = term_columns
                column = column_of[code[first]]
            else:
                at = np.minimum(np.searchsorted(codes, code[first]), len(codes) - 1)
                column = np.where(codes[at] == code[first], term_columns[at], -1)
            found = column >= 0  # -1: not a term
            rows.append(document[first[found]])
            columns.append(column[found])
        row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        column = np.concatenate(columns) if columns else np.empty(0, dtype=np.int64)
        counts = sp.csr_matrix((np.ones(len(row), dtype=self.dtype), (row, column)),
                               shape=(len(lengths), len(self.vocabulary_)), dtype=self.dtype)
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
