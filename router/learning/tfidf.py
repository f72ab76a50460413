"""TF-IDF features over query texts: scikit-learn's vectorizer, with a one-line error for queries without words.

Its own module so that scikit-learn is imported when TF-IDF is used, not when `router` is.
"""

from __future__ import annotations

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
