"""A shared saved router is untrusted input, and so are the other inputs issue 24 measured.

Each hostile case is built here from a real saved router (knn on TF-IDF, fit and saved by the
library) or a real tiny BERT encoder, then loaded by the real `load_router`: every case must
end in one RoutingInputError naming the file and the fix, fast, before anything large is
allocated or any foreign regular expression is compiled. Beside them: locks whose owner is gone,
audit inputs of the wrong types, NaN scores and strict JSON, train/test overlap.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lm_routing.learning.routers
import lm_routing.saved
from conftest import REPO, build_tiny_encoder
from lm_routing.errors import RoutingInputError, finite_scores
from lm_routing.reading.publish import Outputs
from lm_routing.reporting.comparison import strict_json
from lm_routing.learning.routers import make_router
from lm_routing.saved import load_router, save_router
from lm_routing.saved import check_encoder_folder
from test_corrupted_inputs import assert_one_line_error, run  # noqa: F401  (fixture: the in-process CLI)
from test_hostile_outputs import rehash

QUERIES = [f"how many {thing} does {name} have after buying {n} more" for thing in ("apples", "pens", "cars")
           for name in ("Tom", "Ann", "Bo", "Lee") for n in range(3)]
CATASTROPHIC = ["(?:(?:.|.|.|.|.)*)*Z", "(a+)+$", "(x|x|x)*y", "(?:a|aa)*b", "((ab)*)*c", r"(\w+\s?)*$"]


@pytest.fixture(scope="module")
def saved_knn(tmp_path_factory) -> Path:
    labels = np.array([[i % 2, (i // 2) % 2, 1] for i in range(len(QUERIES))], dtype=float)
    folder = tmp_path_factory.mktemp("knn") / "knn"
    return save_router(make_router("knn", n_neighbors=3).fit(QUERIES, labels), folder, ("a", "b", "c"))


@pytest.fixture
def knn(saved_knn, tmp_path) -> Path:
    """A fresh copy of the saved knn router, to damage."""
    return Path(shutil.copytree(saved_knn, tmp_path / "knn"))


def edit_meta(folder: Path, change) -> None:
    path = folder / "router.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def refused(folder: Path, *fragments: str, within_s: float = 10.0) -> str:
    """load_router(folder) raises one RoutingInputError line holding every fragment, within `within_s` seconds."""
    start = time.perf_counter()
    with pytest.raises(RoutingInputError) as caught:
        load_router(folder)
    message = str(caught.value)
    assert time.perf_counter() - start < within_s
    assert "\n" not in message and "please report" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_the_saved_router_declares_its_arrays_and_loads(saved_knn):
    meta = json.loads((saved_knn / "router.json").read_text())
    assert meta["format"] == 4 and meta["arrays"]["router.labels"] == {"dtype": "<f8", "shape": [len(QUERIES), 3]}
    loaded, models = load_router(saved_knn)
    assert models == ("a", "b", "c") and loaded.predict_proba(["how many pens"]).shape == (1, 3)


def test_a_router_saved_by_the_previous_format_still_loads(knn):
    """Format 2 (no 'arrays'): read with the same header checks, sizes taken from the headers themselves."""
    edit_meta(knn, lambda m: (m.update(format=2), m.pop("arrays"), m.pop("versions")))
    loaded, _ = load_router(knn)
    assert loaded.predict_proba(["how many cars"]).shape == (1, 3)


def test_a_router_saved_by_format_3_still_loads(knn):
    """Format 3 (no 'versions'): loads as before; the versions of the libraries that wrote it are unknown."""
    edit_meta(knn, lambda m: (m.update(format=3), m.pop("versions")))
    loaded, _ = load_router(knn)
    assert loaded.predict_proba(["how many cars"]).shape == (1, 3)


def test_the_saved_router_records_the_library_versions_it_is_rebuilt_by(saved_knn):
    import sklearn

    versions = json.loads((saved_knn / "router.json").read_text())["versions"]
    assert versions["scikit-learn"] == sklearn.__version__ and {"numpy", "lm-routing"} <= versions.keys()


def test_trees_saved_by_another_scikit_learn_minor_are_refused_in_one_line(tmp_path):
    labels = np.array([[i % 2, (i // 2) % 2, 1] for i in range(len(QUERIES))], dtype=float)
    rf = save_router(make_router("rf", n_estimators=3).fit(QUERIES, labels), tmp_path / "rf", ("a", "b", "c"))
    assert load_router(rf)[0].predict_proba(["how many pens"]).shape == (1, 3)  # the same scikit-learn: loads
    edit_meta(rf, lambda m: m["versions"].update({"scikit-learn": "1.2.2"}))
    refused(rf, "saved by scikit-learn 1.2.2", "save the router again")
    edit_meta(rf, lambda m: m["versions"].update({"scikit-learn": "1.2.2; rm -rf /"}))
    refused(rf, "'versions' must map")


# ---------------------------------------------------------------- router.json: every field typed and ranged

ROUTER_PARAMS = [
    ("knn", "n_neighbors", [0, -1, 10**9, 1.5, "5", True, None, [3], {"k": 3}]),
    ("knn", "features", ["pickle", "hf:", "hf:" + "x" * 400, 5, ["tfidf"], "/etc/passwd"]),
    ("mlp", "hidden", [0, 10**9, 2.5, "128"]), ("mlp", "dropout", [-0.1, 1.5, "0.2"]),
    ("mlp", "svd_dims", [0, 10**6]), ("mlp", "epochs", [0, 10**9]), ("mlp", "batch_size", [0, 10**8]),
    ("mlp", "lr", [-1, 1e9]), ("mlp", "seed", [-1, 2**40, 1.0]), ("mlp", "validation_fraction", [2, -1]),
    ("mf", "dim", [0, 10**7]), ("rf", "n_estimators", [0, 10**8]), ("rf", "n_jobs", [0, -2, 10**6]),
    ("lr", "C", [0, -1, 1e300, "1"]), ("cluster", "n_clusters", [0, "many", 10**9]),
    ("cluster", "prior_weight", [-1]), ("sc", "max_length", [0, 4, 10**6]), ("sc", "pooling", ["max", 1]),
    ("sc", "encoder", ["", 5, "x" * 1000]), ("mlc", "soft_targets", ["yes", 1]),
]


@pytest.mark.parametrize("router_name, param, value",
                         [(r, p, v) for r, p, values in ROUTER_PARAMS for v in values], ids=str)
def test_hyper_parameter_out_of_type_or_range(knn, router_name, param, value):
    if router_name not in lm_routing.learning.routers.ROUTERS:
        pytest.skip(f"no router {router_name}")
    edit_meta(knn, lambda m: m.update(router=router_name, params={param: value}))
    refused(knn, "router.json", f"'params.{param}' is")


def test_nan_hyper_parameter(knn):
    (knn / "router.json").write_text((knn / "router.json").read_text().replace('"n_neighbors": 3', '"n_neighbors": NaN'))
    refused(knn, "'params.n_neighbors' is")


@pytest.mark.parametrize("models, n_models", [
    ([], 0), (["a", "a", "b"], 3), (["a", 1, "c"], 3), (["a", "", "c"], 3), (["a", "b", "x" * 600], 3),
    (["a", "b", "c"], 4), (["a", "b", "c"], "3"), ("abc", 3), ([f"m{i}" for i in range(100_001)], 100_001),
], ids=["none", "twice", "number", "empty-name", "long-name", "count-off", "count-text", "text", "too-many"])
def test_models_of_the_wrong_shape(knn, models, n_models):
    edit_meta(knn, lambda m: m.update(models=models, n_models=n_models))
    refused(knn, "'models' must be a list of distinct model names")


def _tfidf(**change):
    def edit(meta):
        meta["features"]["params"].update(change)
    return edit


@pytest.mark.parametrize("pattern", CATASTROPHIC + [r"(?u)\b\w+\b ", "(?u)\\b\\w{1,}\\b", "", "(?P<x>", 5, None],
                         ids=lambda p: repr(p)[:30])
def test_token_pattern_not_written_by_the_library_is_refused_without_compiling(knn, pattern):
    """A catastrophic regex would hang the load probe for minutes: it is compared as text, never compiled."""
    import re

    compiled = re.compile
    seen = []
    re.compile = lambda p, *a, **k: (seen.append(p), compiled(p, *a, **k))[1]  # noqa: E731  (spy, not a mock: it calls through)
    try:
        edit_meta(knn, _tfidf(token_pattern=pattern))
        refused(knn, "token_pattern' is not a pattern lm-routing writes", within_s=1.0)
    finally:
        re.compile = compiled
    assert pattern not in seen


@pytest.mark.parametrize("change, fragment", [
    (_tfidf(analyzer="regex"), "analyzer"), (_tfidf(analyzer=None), "analyzer"),
    (_tfidf(ngram_range=[1, 100]), "ngram_range"), (_tfidf(ngram_range=[0, 1]), "ngram_range"),
    (_tfidf(ngram_range=[2, 1]), "ngram_range"), (_tfidf(ngram_range=["1", "2"]), "ngram_range"),
    (_tfidf(ngram_range=[1]), "ngram_range"), (_tfidf(ngram_range=[1, 2.0]), "ngram_range"),
    (_tfidf(lowercase="yes"), "lowercase"), (_tfidf(sublinear_tf=1), "sublinear_tf"),
    (_tfidf(max_features=-1), "max_features"), (_tfidf(max_features=10**12), "max_features"),
    (_tfidf(max_features=1.5), "max_features"), (_tfidf(stop_words="english"), "exactly the keys"),
    (lambda m: m["features"]["params"].pop("analyzer"), "exactly the keys"),
    (lambda m: m.update(features={"kind": "tfidf", "params": [], }), "exactly the keys"),
    (lambda m: m.update(features={"kind": "pickle", "path": "x.pkl"}), "not a kind lm-routing saves"),
    (lambda m: m.update(features="tfidf"), "'features' must be an object or null"),
    (lambda m: m.update(features={"kind": "embeddings", "name": "/etc", "max_length": 8, "batch_size": 1}), "'features.name'"),
    (lambda m: m.update(features={"kind": "embeddings", "name": "bert-base", "max_length": 8, "batch_size": 1}),
     "'features.name'"),
    (lambda m: m.update(features={"kind": "embeddings", "name": "minilm", "max_length": 0, "batch_size": 1}), "max_length"),
    (lambda m: m.update(features={"kind": "embeddings", "name": "minilm", "max_length": 64, "batch_size": 10**9}),
     "batch_size"),
    (lambda m: m.update(features={"kind": "embeddings", "name": "hf:org/model", "max_length": 64, "batch_size": 8}),
     "no model.safetensors and config.json"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_features_only_as_the_library_writes_them(knn, change, fragment):
    edit_meta(knn, change)
    refused(knn, fragment)


def test_old_router_whose_features_load_an_outside_encoder_is_refused(knn):
    edit_meta(knn, lambda m: (m.update(format=2, features={"kind": "embeddings", "name": "hf:/tmp/model",
                                                            "max_length": 64, "batch_size": 8}), m.pop("arrays"), m.pop("versions")))
    refused(knn, "load an encoder from outside the saved folder", "save the router again")


@pytest.mark.parametrize("encoder", [
    {"pooling": "max", "max_length": 128}, {"pooling": "mean", "max_length": 10**9}, {"pooling": "mean", "max_length": -1},
    {"pooling": "mean", "max_length": "128"}, {"pooling": "mean", "max_length": 128, "x": 1}, {"pooling": "mean"},
    ["mean", 128], "mean",
], ids=str)
def test_encoder_entry_of_the_wrong_shape(knn, encoder):
    edit_meta(knn, lambda m: m.update(encoder=encoder))
    refused(knn, "'encoder' must be null or {pooling")


@pytest.mark.parametrize("name, fragment", [
    ("encoder/pytorch_model.bin", "pickled weights"), ("encoder/model.ckpt", "pickled weights"),
    ("weights.pt", "pickled weights"), ("encoder/tf_model.h5", "pickled weights"),
    ("encoder/modeling_evil.py", "not a file lm-routing saves"), ("../arrays.npz", "not a file lm-routing saves"),
    ("encoder/../../x", "not a file lm-routing saves"), ("notes.txt", "not a file lm-routing saves"),
], ids=str)
def test_files_a_saved_router_never_holds(knn, name, fragment):
    edit_meta(knn, lambda m: m["files"].update({name: "0" * 64}))
    refused(knn, f"lists {name!r}", fragment)


@pytest.mark.parametrize("declared, fragment", [
    ([], "'arrays' must map each member"), ({"../x": {"dtype": "<f8", "shape": [1]}}, "not one lm-routing writes"),
    ({"router.labels": {"dtype": "<f8", "shape": [-1]}}, "'arrays.router.labels' must be"),
    ({"router.labels": {"dtype": "<f8", "shape": [1] * 9}}, "'arrays.router.labels' must be"),
    ({"router.labels": {"dtype": "<f8", "shape": "big"}}, "'arrays.router.labels' must be"),
    ({"router.labels": {"dtype": "<f8"}}, "'arrays.router.labels' must be"),
    ({"router.labels": {"dtype": "<f8", "shape": [2**63]}}, "'arrays.router.labels' must be"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_array_declarations_of_the_wrong_shape(knn, declared, fragment):
    edit_meta(knn, lambda m: m.update(arrays=declared))
    refused(knn, fragment)


# ---------------------------------------------------------------- arrays.npz: headers checked before any data is read

def _arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "arrays.npz", allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def _rewrite(folder: Path, arrays: dict, compressed: bool = False, redeclare: bool = True) -> None:
    (folder / "arrays.npz").unlink()
    (np.savez_compressed if compressed else np.savez)(folder / "arrays.npz", **arrays)
    if redeclare:
        rehash(folder)
    else:
        edit_meta(folder, lambda m: m["files"].update({"arrays.npz": lm_routing.saved._sha256(folder / "arrays.npz")}))


def _npy_header(shape: tuple, descr: str = "<f8") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _plant_member(folder: Path, name: str, data: bytes, declare: tuple | None, compress=zipfile.ZIP_STORED) -> None:
    """arrays.npz with `name` replaced by raw `data` (an npy header and what follows), router.json rehashed and
    (when `declare` is a shape) declaring that shape."""
    arrays = _arrays(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            if key != name:
                member = io.BytesIO()
                np.lib.format.write_array(member, value)
                archive.writestr(f"{key}.npy", member.getvalue())
        archive.writestr(zipfile.ZipInfo(f"{name}.npy"), data, compress_type=compress)
    (folder / "arrays.npz").write_bytes(buffer.getvalue())
    def change(meta):
        meta["files"]["arrays.npz"] = lm_routing.saved._sha256(folder / "arrays.npz")
        if declare is not None:
            meta["arrays"][name] = {"dtype": "<f8", "shape": list(declare)}
    edit_meta(folder, change)


GIB3 = (3 * 2**30 // 8 // 3, 3)  # float64 rows x 3 models: 3 GiB


def test_a_3_gib_array_is_refused_before_allocation(knn):
    """A 3 GiB member declared alike in router.json and its npy header, stored compressed (3 MB on disk), is
    refused from the headers: peak memory of this process grows by far less than 3 GiB."""
    arrays = _arrays(knn)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            if key != "router.labels":
                member = io.BytesIO()
                np.lib.format.write_array(member, value)
                archive.writestr(f"{key}.npy", member.getvalue(), compress_type=zipfile.ZIP_STORED)
        with archive.open("router.labels.npy", "w", force_zip64=True) as member:
            member.write(_npy_header(GIB3))
            zeros = b"\0" * (64 << 20)
            for _ in range(3 * 2**30 // len(zeros)):
                member.write(zeros)
    (knn / "arrays.npz").write_bytes(buffer.getvalue())
    assert (knn / "arrays.npz").stat().st_size < 20 << 20
    del buffer
    edit_meta(knn, lambda m: (m["files"].update({"arrays.npz": lm_routing.saved._sha256(knn / "arrays.npz")}),
                              m["arrays"].update({"router.labels": {"dtype": "<f8", "shape": list(GIB3)}})))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    refused(knn, "member 'router.labels' is compressed")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < 500 << 20


@pytest.mark.parametrize("declare", [GIB3, None], ids=["declared", "undeclared-format-3"])
def test_a_3_gib_header_over_a_small_member_is_refused_before_allocation(knn, declare):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _plant_member(knn, "router.labels", _npy_header(GIB3) + b"\0" * 64, declare)
    refused(knn, "router.labels")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < 500 << 20


def test_arrays_over_the_memory_this_load_may_use_are_refused(knn, monkeypatch):
    import lm_routing.judging.limits

    monkeypatch.setattr(lm_routing.judging.limits, "available_bytes", lambda: 1000)
    refused(knn, "its arrays need", "GiB this load may use")


@pytest.mark.parametrize("change, fragment", [
    (lambda a: {**a, "router.labels": np.where(np.eye(*a["router.labels"].shape, dtype=bool), np.nan, a["router.labels"])},
     "'router.labels' holds NaN or infinite values"),
    (lambda a: {**a, "router.labels": np.full_like(a["router.labels"], np.inf)}, "NaN or infinite"),
    (lambda a: {**a, "router.labels": a["router.labels"] * 2}, "'router.labels' holds values outside 0-1"),
    (lambda a: {**a, "router.labels": -a["router.labels"] - 1}, "outside 0-1"),
    (lambda a: {**a, "features.idf": np.full_like(a["features.idf"], np.nan)}, "'features.idf' holds NaN"),
    (lambda a: {**a, "features.idf": np.full_like(a["features.idf"], -np.inf)}, "'features.idf' holds NaN"),
    (lambda a: {**a, "router.points.data": np.full_like(a["router.points.data"], np.nan)}, "holds NaN"),
    (lambda a: {**a, "router.extra": np.zeros(3)}, "member 'router.extra' is not part of a saved knn router"),
    (lambda a: {**a, "router.labels": np.zeros((2, 2, 2, 2, 2, 2, 2, 2, 2))}, "not numbers or text|router.labels"),
    (lambda a: {**a, "router.labels": a["router.labels"].astype(np.complex128)}, "not numbers or text"),
    (lambda a: {**a, "router.labels": np.array([b"abc"])}, "not numbers or text"),
    (lambda a: {**a, "router.labels": np.zeros(3, dtype="M8[s]")}, "not numbers or text"),
    (lambda a: {**a, "router.labels": np.zeros(3, dtype=[("x", "O")])}, "pickled data"),
], ids=["nan-label", "inf-labels", "labels-over-1", "labels-negative", "nan-idf", "inf-idf", "nan-points", "extra-member",
        "nine-axes", "complex", "bytes", "datetime", "object-field"])
def test_array_contents_are_checked(knn, change, fragment):
    _rewrite(knn, change(_arrays(knn)))
    with pytest.raises(RoutingInputError) as caught:
        load_router(knn)
    assert any(part in str(caught.value) for part in fragment.split("|")), caught.value


@pytest.mark.parametrize("case", ["compressed", "undeclared", "missing", "wrong-dtype", "wrong-shape", "bad-header",
                                  "not-npy", "not-zip", "truncated-data", "long-data", "version-3", "bad-name"])
def test_archive_members_are_checked_against_router_json(knn, case):
    arrays = _arrays(knn)
    if case == "compressed":
        _rewrite(knn, arrays, compressed=True)
        fragment = "is compressed"
    elif case == "undeclared":
        _rewrite(knn, {**arrays, "router.more": np.zeros(2)}, redeclare=False)
        fragment = "which router.json does not declare"
    elif case == "missing":
        _rewrite(knn, {k: v for k, v in arrays.items() if k != "router.labels"}, redeclare=False)
        fragment = "lacks member 'router.labels'"
    elif case == "wrong-dtype":
        _rewrite(knn, {**arrays, "router.labels": arrays["router.labels"].astype(np.float32)}, redeclare=False)
        fragment = "router.json declares <f8"
    elif case == "wrong-shape":
        _rewrite(knn, {**arrays, "router.labels": arrays["router.labels"][:5]}, redeclare=False)
        fragment = "router.json declares <f8"
    elif case == "bad-header":
        _plant_member(knn, "router.labels", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'    \n", None)
        fragment = "no valid npy header"
    elif case == "not-npy":
        _plant_member(knn, "router.labels", b"hello", None)
        fragment = "no valid npy header"
    elif case == "not-zip":
        (knn / "arrays.npz").write_bytes(b"PK\x03\x04 not really")
        rehash(knn)
        fragment = "not a .npz archive"
    elif case == "truncated-data":
        header = _npy_header(arrays["router.labels"].shape)
        _plant_member(knn, "router.labels", header + arrays["router.labels"].tobytes()[:-8], None)
        fragment = "stores"
    elif case == "long-data":
        header = _npy_header(arrays["router.labels"].shape)
        _plant_member(knn, "router.labels", header + arrays["router.labels"].tobytes() + b"\0" * 8, None)
        fragment = "stores"
    elif case == "version-3":
        _plant_member(knn, "router.labels", b"\x93NUMPY\x03\x00" + b"\0" * 60, None)
        fragment = "no valid npy header"
    else:
        _rewrite(knn, {**arrays, "evil": np.zeros(1)}, redeclare=False)
        fragment = "holds member 'evil.npy', not one lm-routing writes"
    refused(knn, "arrays.npz", fragment)


# ---------------------------------------------------------------- encoder folders: safetensors only, config bounded

@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    from lm_routing.learning.encoders import quiet_transformers

    with quiet_transformers():
        return build_tiny_encoder(tmp_path_factory.mktemp("bert") / "bert", QUERIES)


@pytest.fixture
def encoder(tiny_encoder, tmp_path) -> Path:
    folder = Path(shutil.copytree(tiny_encoder, tmp_path / "encoder"))
    for path in folder.iterdir():  # what a saved router's encoder/ holds (the builder's extras aside)
        if path.name not in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                             "special_tokens_map.json"):
            path.unlink()
    return folder


def _config(folder: Path, **change) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_saved_encoder_passes(encoder):
    check_encoder_folder(encoder, 128)


@pytest.mark.parametrize("change, fragment", [
    (lambda f: _config(f, num_hidden_layers=100_000), "num_hidden_layers is 100000 but model.safetensors holds 2 layers"),
    (lambda f: _config(f, num_hidden_layers=3), "holds 2 layers"), (lambda f: _config(f, num_hidden_layers=0), "holds 2"),
    (lambda f: _config(f, hidden_size=10**6), "hidden_size is 1000000, beyond every tensor"),
    (lambda f: _config(f, intermediate_size=10**7), "intermediate_size"),
    (lambda f: _config(f, vocab_size=10**8), "vocab_size"),
    (lambda f: _config(f, max_position_embeddings=10**9), "max_position_embeddings"),
    (lambda f: _config(f, num_attention_heads=10**6), "num_attention_heads"),
    (lambda f: _config(f, auto_map={"AutoModel": "evil.Model"}), "auto_map"),
    (lambda f: _config(f, model_type=None), "not a model config"),
    (lambda f: (f / "config.json").write_text("[1, 2]"), "not a model config"),
    (lambda f: (f / "config.json").write_text("{"), "not JSON"),
    (lambda f: (f / "config.json").write_bytes(b" " * 2_000_000), "over 1000000 bytes"),
    (lambda f: (f / "config.json").unlink(), "no model.safetensors and config.json"),
    (lambda f: (f / "model.safetensors").unlink(), "no model.safetensors and config.json"),
    (lambda f: (f / "pytorch_model.bin").write_bytes(b"\x80\x04."), "pickled weights"),
    (lambda f: ((f / "model.safetensors").unlink(), (f / "pytorch_model.bin").write_bytes(b"\x80\x04.")), "pickled weights"),
    (lambda f: (f / "modeling_bert.py").write_text("import os"), "not a file of a saved encoder"),
    (lambda f: (f / "model.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}"), "not a valid safetensors"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x01"), "not a valid safetensors"),
    (lambda f: (f / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"[]"), "not a valid safetensors"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-4]), "not a valid safetensors"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes() + b"\0" * 4),
     "not a valid safetensors"),
    (lambda f: _safetensors_edit(f, lambda h: h[next(iter(h))].update(shape=[10**9, 10**9])), "not a valid safetensors"),
    (lambda f: _safetensors_edit(f, lambda h: h[next(iter(h))].update(dtype="PICKLE")), "not a valid safetensors"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_encoder_folders_are_refused(encoder, change, fragment):
    change(encoder)
    with pytest.raises(RoutingInputError) as caught:
        check_encoder_folder(encoder, 128)
    assert fragment in str(caught.value) and "\n" not in str(caught.value), caught.value


def _safetensors_edit(folder: Path, change) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    change({k: v for k, v in header.items() if k != "__metadata__"})  # the tensors, edited in place
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])


def test_max_length_beyond_the_encoders_positions_is_refused(encoder):
    with pytest.raises(RoutingInputError, match="max_length 4096 is over the encoder's 128 positions"):
        check_encoder_folder(encoder, 4096)


def test_hf_features_save_their_own_encoder_and_a_pickle_only_copy_is_refused(tiny_encoder, tmp_path):
    """Embedding features of a local model: the saved router holds its own safetensors copy, loaded without the
    original; that copy swapped for pytorch_model.bin is refused before anything loads."""
    labels = np.array([[i % 2, 1 - i % 2] for i in range(len(QUERIES))], dtype=float)
    fitted = make_router("knn", features=f"hf:{tiny_encoder}").fit(QUERIES, labels)
    fitted.featurizer_.max_length = 64  # within the tiny BERT's 128 positions (the features' default is 256)
    saved = save_router(fitted, tmp_path / "hf", ("a", "b"))
    assert (saved / "encoder" / "model.safetensors").is_file()
    moved = Path(shutil.copytree(saved, tmp_path / "moved"))
    loaded, _ = load_router(moved)
    assert loaded.featurizer_.saved == str(moved / "encoder")
    assert loaded.predict_proba(QUERIES[:2]).shape == (2, 2)
    (moved / "encoder" / "model.safetensors").unlink()
    (moved / "encoder" / "pytorch_model.bin").write_bytes(b"\x80\x04.")
    edit_meta(moved, lambda m: m["files"].update({"encoder/pytorch_model.bin": m["files"].pop("encoder/model.safetensors")}))
    rehash(moved)
    refused(moved, "encoder/pytorch_model.bin", "pickled weights")


# ---------------------------------------------------------------- tokenizer.json: only what lm-routing's encoders use

def _tokenizer(folder: Path, change) -> None:
    path = folder / "tokenizer.json"
    spec = json.loads(path.read_text())
    change(spec)
    path.write_text(json.dumps(spec))


def _split(pattern) -> dict:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def _replace(pattern) -> dict:
    return {"type": "Replace", "pattern": {"Regex": pattern}, "content": " "}


def _charsmap(blob: bytes) -> dict:
    import base64

    return {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(blob).decode()}


SPLIT_IN_SEQUENCE = {"type": "Sequence", "pretokenizers": [{"type": "BertPreTokenizer"}, _split("(a+)+$")]}
TOKENIZER_CASES = [
    *[(lambda s, p=p: s.update(pre_tokenizer=_split(p)), "'pre_tokenizer.pattern.Regex' is a regular expression")
      for p in [*CATASTROPHIC, "(?P<x", "", "\\w+"]],
    (lambda s: s.update(pre_tokenizer=SPLIT_IN_SEQUENCE), "'pre_tokenizer.pretokenizers[1].pattern.Regex'"),
    (lambda s: s.update(normalizer=_replace("(x|x|x)*y")), "'normalizer.pattern.Regex'"),
    (lambda s: s.update(normalizer={"type": "Sequence", "normalizers": [s["normalizer"], _replace(r" {2,}(a+)+$")]}),
     "'normalizer.normalizers[1].pattern.Regex'"),
    (lambda s: s.update(decoder={"type": "Replace", "pattern": {"Regex": "(a|aa)*b"}, "content": ""}), "'decoder.pattern.Regex'"),
    (lambda s: s["post_processor"].update(extra={"Regex": "(a+)+"}), "'post_processor.extra.Regex'"),
    (lambda s: s.update(truncation={"max_length": 8, "pattern": {"Regex": "(a+)+"}}), "'truncation.pattern.Regex'"),
    (lambda s: s.update(pre_tokenizer={"type": "PythonPreTokenizer"}), "'pre_tokenizer' is a pre_tokenizer of type"),
    (lambda s: s.update(normalizer={"type": "Custom", "code": "x"}), "'normalizer' is a normalizer of type \"Custom\""),
    (lambda s: s.update(decoder={"prefix": "##"}), "'decoder' is a decoder of type null"),
    (lambda s: s.update(post_processor="TemplateProcessing"), "'post_processor' is a post_processor of type null"),
    (lambda s: s["model"].update(type="Custom"), "'model' is a model of type \"Custom\""),
    (lambda s: s.update(model=None), "'model' is a model of type null"),
    (lambda s: s.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [SPLIT_IN_SEQUENCE]}),
     "'pre_tokenizer.pretokenizers[0]' is a pre_tokenizer of type \"Sequence\""),
    (lambda s: s.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}] * 17}),
     "'pre_tokenizer.pretokenizers' must be a list of at most 16"),
    (lambda s: s.update(pre_tokenizer={"type": "Sequence", "pretokenizers": {"type": "Whitespace"}}),
     "'pre_tokenizer.pretokenizers' must be a list"),
    (lambda s: s.update(python="import os"), "'python' is not a part of a tokenizer"),
    (lambda s: s.update({"x\nTraceback": 1}), "'\"x\\nTraceback\"' is not a part of a tokenizer"),
    (lambda s: s["post_processor"].update({"a\nb": {"c\rd": {"Regex": "(a+)+"}}}), "'post_processor.\"a\\nb\".\"c\\rd\".Regex'"),
    (lambda s: s["model"]["vocab"].update({f"w{i}": 400 + i for i in range(500)}), "'model.vocab' holds"),
    (lambda s: s["model"]["vocab"].update({"[PAD]": 10**9}), "'model.vocab' holds"),
    (lambda s: s["model"]["vocab"].update({"[PAD]": -1}), "'model.vocab' holds"),
    (lambda s: s["model"]["vocab"].update({"[PAD]": "0"}), "'model.vocab' is not a WordPiece vocabulary"),
    (lambda s: s["model"].update(vocab=[["a", 0.0]]), "'model.vocab' is not a WordPiece vocabulary"),
    (lambda s: s["model"].update(type="Unigram", vocab=[["a", "x"]]), "'model.vocab' is not a Unigram vocabulary"),
    (lambda s: s["model"].update(type="Unigram", vocab=[["a", 0.0]] * 1000), "'model.vocab' holds 1000 tokens"),
    (lambda s: s["model"].update(type="BPE", merges=["a b"] * 10_000), "'model.merges' must be a list of at most"),
    (lambda s: s["added_tokens"].append({"id": 10**6, "content": "x"}), "'added_tokens' must be at most"),
    (lambda s: s.update(added_tokens=[{"id": 1, "content": "x"}] * 1000), "'added_tokens' must be at most"),
    (lambda s: s.update(padding={"strategy": {"Fixed": 2**40}, "pad_id": 0}), "'padding.strategy.Fixed' is 1099511627776"),
    (lambda s: s["model"].update(max_input_chars_per_word=2**40), "'model.max_input_chars_per_word' is 1099511627776"),
    (lambda s: s.update(normalizer=_charsmap(b"\xff" * 64)), "'normalizer.precompiled_charsmap' is not"),
    (lambda s: s.update(normalizer=_charsmap(b"\x03\x00\x00\x00abc")), "'normalizer.precompiled_charsmap' is not"),
    (lambda s: s.update(normalizer={"type": "Precompiled", "precompiled_charsmap": "not base64!"}),
     "'normalizer.precompiled_charsmap' is not"),
]


@pytest.mark.parametrize("change, fragment", TOKENIZER_CASES, ids=lambda v: v[:60] if isinstance(v, str) else "")
def test_hostile_tokenizer_json_is_refused_as_text(encoder, change, fragment):
    """Each case is refused within a second by reading tokenizer.json as JSON: the file and the JSON path of the field
    are named; no regular expression reaches the tokenizers library (an invalid one would fail there, not here)."""
    _tokenizer(encoder, change)
    start = time.perf_counter()
    with pytest.raises(RoutingInputError) as caught:
        check_encoder_folder(encoder, 128)
    assert time.perf_counter() - start < 1.0
    message = str(caught.value)
    assert message.startswith(str(encoder / "tokenizer.json")) and "\n" not in message
    assert fragment in message, message


@pytest.mark.parametrize("write, fragment", [
    (lambda f: (f / "tokenizer.json").write_text("{"), "tokenizer.json: not a JSON object"),
    (lambda f: (f / "tokenizer.json").write_text("[1, 2]"), "tokenizer.json: not a JSON object"),
    (lambda f: (f / "tokenizer.json").write_text("[" * 200_000 + "]" * 200_000), "tokenizer.json: not a JSON object"),
    (lambda f: (f / "tokenizer.json").write_bytes(b"\xff\xfe{}"), "tokenizer.json: not a JSON object"),
    (lambda f: os.truncate(f / "tokenizer.json", 64 * 2**20 + 1), "over the 67108864 of any encoder's tokenizer"),
    (lambda f: (f / "tokenizer_config.json").write_text('{"auto_map": {"AutoTokenizer": ["evil.Tok", null]}}'),
     "tokenizer_config.json: names its own tokenizer code (auto_map)"),
    (lambda f: (f / "tokenizer_config.json").write_text("{"), "tokenizer_config.json: not a JSON object"),
    (lambda f: os.truncate(f / "tokenizer_config.json", 2_000_000), "tokenizer_config.json: over 1000000 bytes"),
], ids=lambda v: v[:50] if isinstance(v, str) else "")
def test_tokenizer_files_that_are_not_json_or_too_large(encoder, write, fragment):
    write(encoder)
    start = time.perf_counter()
    with pytest.raises(RoutingInputError) as caught:
        check_encoder_folder(encoder, 128)
    assert time.perf_counter() - start < 1.0 and fragment in str(caught.value), caught.value


def test_tokenizers_of_the_encoder_families_pass(encoder):
    """What transformers saves for the encoders lm-routing uses: MiniLM (the package's own file), BERT/MPNet
    (WordPiece), RoBERTa (byte-level BPE), T5/XLM-R (Unigram, Metaspace), DeBERTa-v2 (its whitespace regex)."""
    import transformers

    from lm_routing.learning.encoders import minilm_folder
    from lm_routing.saved import _tokenizer_problem

    assert _tokenizer_problem(Path(minilm_folder()), 30522) is None
    unigram = [(w, -1.0) for w in ["<pad>", "</s>", "<unk>", "<s>", "[PAD]", "[CLS]", "[SEP]", "[UNK]", "▁a", "c"]]
    built = {
        "T5Tokenizer": dict(vocab=unigram, extra_ids=3), "XLMRobertaTokenizer": dict(vocab=unigram),
        "DebertaV2Tokenizer": dict(vocab=unigram),
        "RobertaTokenizer": dict(vocab={w: i for i, w in enumerate(["<s>", "<pad>", "</s>", "<unk>", "a", "b", "ab"])},
                                 merges=[("a", "b")]),
        "MPNetTokenizer": dict(vocab={w: i for i, w in enumerate(["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "a"])}),
    }
    for name, arguments in built.items():
        folder = encoder.parent / name
        getattr(transformers, name)(**arguments).save_pretrained(folder)
        assert _tokenizer_problem(folder, 100) is None, name
    assert json.loads((encoder.parent / "DebertaV2Tokenizer" / "tokenizer.json").read_text())["normalizer"][
        "normalizers"][0]["pattern"] == {"Regex": r"\s{2,}|[\n\r\t]"}  # the one non-trivial pattern allowed


@pytest.fixture(scope="module")
def saved_hf_knn(tiny_encoder, tmp_path_factory) -> Path:
    """knn on the tiny BERT's embeddings, saved by the library (its encoder/ copied as safetensors)."""
    labels = np.array([[i % 2, 1 - i % 2] for i in range(len(QUERIES))], dtype=float)
    fitted = make_router("knn", features=f"hf:{tiny_encoder}").fit(QUERIES, labels)
    fitted.featurizer_.max_length = 64
    return save_router(fitted, tmp_path_factory.mktemp("hf") / "hf", ("a", "b"))


@pytest.fixture
def tokenizer_loads(monkeypatch) -> list:
    """Every folder transformers is asked to load a tokenizer from (a spy: it calls through)."""
    import transformers

    calls, load = [], transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        lambda *a, **k: (calls.append(a[0]), load(*a, **k))[1])
    return calls


def test_a_saved_encoder_router_still_loads_and_predicts(saved_hf_knn, tmp_path, tokenizer_loads, run):
    moved = Path(shutil.copytree(saved_hf_knn, tmp_path / "hf"))
    loaded, models = load_router(moved)
    assert models == ("a", "b") and loaded.predict_proba(QUERIES[:3]).shape == (3, 2)
    assert tokenizer_loads  # the spy sees the tokenizer load, so the test below can fail
    done = run("predict", "--load", moved, "--query", QUERIES[0], "--query", "how many pens does Bo have 12345")
    assert done.code == 0, done.err


@pytest.mark.parametrize("pattern", ["(.*?)*(.*?)*(.*?)*\\d", "(?P<x"], ids=["backtracks", "invalid"])
def test_a_saved_router_whose_tokenizer_carries_a_regex_is_refused_uncompiled(saved_hf_knn, tmp_path, tokenizer_loads,
                                                                              run, pattern):
    """Unchecked, the first pattern loads (the probe query has no digit) and then panics Oniguruma on a long query
    (pyo3 PanicException: a traceback past every `except Exception`). Now: one line, exit 2, within a second, and
    transformers never asked for the tokenizer."""
    evil = Path(shutil.copytree(saved_hf_knn, tmp_path / "evil"))
    _tokenizer(evil / "encoder", lambda s: s.update(pre_tokenizer={
        "type": "Sequence", "pretokenizers": [_split(pattern), {"type": "BertPreTokenizer"}]}))
    rehash(evil)
    refused(evil, "encoder/tokenizer.json", "'pre_tokenizer.pretokenizers[0].pattern.Regex'", within_s=1.0)
    done = run("predict", "--load", evil, "--query", "how many pens does Bo have after buying 12345 more " * 4)
    assert_one_line_error(done.code, done.out, done.err, "'pre_tokenizer.pretokenizers[0].pattern.Regex'")
    assert not tokenizer_loads


def test_a_damaged_charsmap_that_panics_the_tokenizers_library_is_one_line(saved_hf_knn, tmp_path, capfd):
    """A Precompiled charsmap laid out right but with a garbage trie passes the text check; the Rust library panics on
    the probe query (a BaseException): the load reports it as the damaged router it is."""
    evil = Path(shutil.copytree(saved_hf_knn, tmp_path / "evil"))
    trie = struct.pack("<16I", *[(2_654_435_761 * i) % 2**32 for i in range(1, 17)])
    _tokenizer(evil / "encoder", lambda s: s.update(normalizer=_charsmap(struct.pack("<I", len(trie)) + trie + b"a\0")))
    rehash(evil)
    capfd.readouterr()
    refused(evil, "cannot rebuild the saved router (PanicException")
    assert "panicked" not in capfd.readouterr().err  # the Rust library's own line, written to fd 2, is kept back


# ---------------------------------------------------------------- locks whose owner is gone are taken over

@pytest.mark.parametrize("content, age_s", [
    ("", 60), ("garbage", 0), ("\xff\xfe", 0), ("1", 0), (str(os.getpid()), 0), (str(2**31), 0), (str(2**63), 0),
    ("-5", 0), ("99999999999999999999999", 0), ("12 34", 0),
], ids=["empty-old", "garbage", "binary", "pid-1", "own-pid", "pid-2^31", "pid-2^63", "negative", "huge", "two-numbers"])
def test_a_lock_no_live_run_holds_is_reported_and_taken_over(tmp_path, content, age_s):
    lock = tmp_path / ".out.lock"
    lock.write_text(content)
    if age_s:
        os.utime(lock, (time.time() - age_s, time.time() - age_s))
    with Outputs() as outputs:
        (outputs.folder(tmp_path / "out") / "f.txt").write_text("x")
    assert (tmp_path / "out" / "f.txt").read_text() == "x" and not lock.exists()
    assert any(note.code == "killed-run-leftover" and note.fields["path"] == str(lock) for note in outputs.notes), outputs.notes


def test_a_held_lock_is_named_with_its_pid_and_file(tmp_path):
    import fcntl

    lock = tmp_path / ".out.lock"
    lock.write_text("4242")
    with open(lock) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RoutingInputError, match=rf"being written by another run \(pid 4242, lock file {lock}\)"):
            with Outputs() as outputs:
                outputs.folder(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_lock_just_created_is_not_taken_over(tmp_path):
    (tmp_path / ".out.lock").write_text("")  # a live run between creating its lock and taking the OS lock
    with pytest.raises(RoutingInputError, match="being written by another run \\(empty or unreadable"):
        with Outputs() as outputs:
            outputs.folder(tmp_path / "out")


@pytest.mark.parametrize("pid", [2**31, 2**40, 0, 4_194_305])
def test_leftover_named_with_an_impossible_pid_is_a_note(tmp_path, pid):
    (tmp_path / f".out.{pid}.0123abcd.tmp").mkdir()
    with Outputs() as outputs:
        outputs.folder(tmp_path / "out")
    assert any(note.fields["owner"] == f"pid {pid}" for note in outputs.notes)


# ---------------------------------------------------------------- audit fields of other types: one line, file:line

@pytest.fixture(scope="module")
def audit_logs_dir(tmp_path_factory) -> Path:
    from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

    pool = tuple(m for m in PAPER_POOL if m.name == "mistral-7b")
    return write_simulated_logs(tmp_path_factory.mktemp("audit"), seed=0, pool=pool,
                                splits={"train": {"gsm8k": 2, "mmlu": 1}, "test": {"gsm8k": 3, "mmlu": 1}}) / "gsm8k"


@pytest.mark.parametrize("field, value", [
    ("until", 5), ("until", {"a": 1}), ("until", [1, 2]), ("until", ["ok", None]), ("max_gen_toks", "abc"),
    ("max_gen_toks", [1]), ("max_gen_toks", 1.5), ("max_gen_toks", -3), ("max_gen_toks", True), ("max_gen_toks", {"n": 1}),
], ids=str)
def test_audit_generation_settings_of_other_types(audit_logs_dir, tmp_path, field, value):
    from lm_routing.reading.audit import audit_logs

    logs = Path(shutil.copytree(audit_logs_dir, tmp_path / "logs"))
    (samples,) = [p for p in logs.rglob("samples_*.jsonl") if "_train" not in p.name]
    rows = [json.loads(line) for line in samples.open()]
    rows[1]["arguments"] = {"gen_args_0": {"arg_0": "prompt", "arg_1": {"until": ["\n"], "max_gen_toks": 16, field: value}}}
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(RoutingInputError, match=rf"{samples}:2: '{field}' is"):
        audit_logs(logs)


@pytest.mark.parametrize("where, value", [
    ("config", [1]), ("config", "hf"), ("model_args", [1, 2]), ("model_args", 7), ("model_args", {"1": 2, 3: 4}),
    ("generation_kwargs", "until=x"), ("generation_kwargs", [1]),
], ids=str)
def test_audit_configs_of_other_types(audit_logs_dir, tmp_path, where, value):
    from lm_routing.reading.audit import audit_logs

    logs = Path(shutil.copytree(audit_logs_dir, tmp_path / "logs"))
    (results,) = [p for p in logs.rglob("results_*.json")]
    document = json.loads(results.read_text())
    if where == "config":
        document["config"] = value
    elif where == "model_args":
        document["config"] = {**(document.get("config") or {}), "model_args": value}
    else:
        for config in document["configs"].values():
            config["generation_kwargs"] = value
    results.write_text(json.dumps(document))
    if where == "model_args" and isinstance(value, dict):  # JSON keys are always text: this one is valid
        audit_logs(logs)
        return
    with pytest.raises(RoutingInputError) as caught:
        audit_logs(logs)
    assert "\n" not in str(caught.value) and ("results_" in str(caught.value) or "samples_" in str(caught.value))


# ---------------------------------------------------------------- NaN scores, strict JSON

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_of_a_loaded_router_are_refused(bad):
    scores = np.full((4, 2), 0.5)
    scores[2, 1] = bad
    with pytest.raises(RoutingInputError, match="saved: scores NaN or infinite for 1 of 4 queries"):
        finite_scores(scores, "saved")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), [1.0, float("nan")], {"a": {"b": float("inf")}}])
def test_json_output_is_strict(value):
    text = strict_json({"x": value})
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)


# ---------------------------------------------------------------- train/test overlap

def _table(path: Path, questions: list[str]) -> Path:
    path.write_text(json.dumps([{"question": q, "scores": {"a": i % 2, "b": (i + 1) % 2}} for i, q in enumerate(questions)]))
    return path


TRAIN_Q = [f"what is {i} plus {i + 1} apples" for i in range(30)]


@pytest.mark.parametrize("test_q, count", [
    (TRAIN_Q[:20], 20), ([q.upper() for q in TRAIN_Q[:5]] + [f"new {i} question" for i in range(15)], 5),
    ([f"  {q}  ".replace(" ", "   ") for q in TRAIN_Q[:1]] + [f"other {i} question" for i in range(19)], 1),
], ids=["copy", "case", "spacing"])
def test_test_queries_that_are_training_queries_are_counted_or_refused(run, tmp_path, test_q, count):
    train, test = _table(tmp_path / "a_train.json", TRAIN_Q), _table(tmp_path / "a_test.json", test_q)
    done = run("--scores", train, "--test-scores", test, "--router", "knn", "--policy", "argmax", "--refuse-overlap")
    message = assert_one_line_error(done.code, done.out, done.err, str(train), str(test),
                                    f"{count} of {len(test_q)} test queries")
    assert "e.g. " in message
    allowed = run("--scores", train, "--test-scores", test, "--router", "knn", "--policy", "argmax", "--json")
    assert allowed.code == 0, allowed.err  # the default: scored, with a warning that counts them
    (note,) = [n for n in json.loads(allowed.out)["notes"] if n["code"] == "train-test-overlap"]  # data, and its line
    assert note["fields"]["overlapping"] == count and note["fields"]["test_queries"] == len(test_q)
    assert f"{count} of {len(test_q)} test queries" in note["message"] and "--refuse-overlap" in note["message"]


def test_disjoint_splits_get_no_overlap_word(run, tmp_path):
    train = _table(tmp_path / "a_train.json", TRAIN_Q)
    test = _table(tmp_path / "a_test.json", [f"fresh {i} question about pens" for i in range(20)])
    done = run("--scores", train, "--test-scores", test, "--router", "knn", "--policy", "argmax", "--json")
    assert done.code == 0, done.err
    assert not any(n["code"] == "train-test-overlap" for n in json.loads(done.out)["notes"])


# ---------------------------------------------------------------- --plot is published with the rest, or not at all

def test_plot_interrupted_before_the_renames_leaves_nothing(tmp_path):
    pytest.importorskip("matplotlib")
    train = _table(tmp_path / "a_train.json", TRAIN_Q)
    test = _table(tmp_path / "a_test.json", [f"fresh {i} question about pens" for i in range(20)])
    env = {**os.environ, "PYTHONPATH": str(REPO), "LM_ROUTING_FAULT_AT": "2:SIGINT"}
    done = subprocess.run([sys.executable, "-m", "lm_routing.cli.main", "--scores", train, "--test-scores", test, "--router", "knn",
                           "--policy", "argmax", "--plot", tmp_path / "fig.png", "--save", tmp_path / "sv"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert not list(tmp_path.glob("fig*")) and not (tmp_path / "sv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_rust_panic_after_loading_is_one_line_from_the_cli(saved_hf_knn, tmp_path, monkeypatch, capsys):
    """A panic inside a Rust library at predict time (pyo3's PanicException, a BaseException that `except Exception`
    lets through) still ends routing-eval in one line, exit 2. The panic is a real one, raised by tokenizers."""
    from tokenizers import Tokenizer

    import lm_routing.cli.main as main_module

    evil = Path(shutil.copytree(saved_hf_knn, tmp_path / "evil"))
    trie = struct.pack("<16I", *[(2_654_435_761 * i) % 2**32 for i in range(1, 17)])
    _tokenizer(evil / "encoder", lambda s: s.update(normalizer=_charsmap(struct.pack("<I", len(trie)) + trie + b"a\0")))
    tokenizer = Tokenizer.from_file(str(evil / "encoder" / "tokenizer.json"))

    def panics(*args, **kwargs):
        tokenizer.encode("a probe query")  # the Rust library panics here

    monkeypatch.setattr(main_module.cli, "main", panics)
    with pytest.raises(SystemExit) as stopped:
        main_module._run(["predict", "--load", str(evil), "--query", "x"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and err.startswith("routing-eval: error: unexpected PanicException")
