"""Routers by name: each predicts P(model solves query) for every model in the pool.

The contract, the registries and `make_router` live in router.routers.base (re-exported here);
this module is the saved form: `save_router` / `load_router` without pickle.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np

from router.errors import NotFittedError, RoutingInputError
from router.estimator_arrays import prefixed, unprefixed
from router.features import HF_PREFIX, SentenceEmbeddings, featurizer_state, restore_featurizer
from router.publish import Outputs, write_new_file
from router.saved_schema import (
    check_declared, check_encoder_folder, check_encoder_spec, check_features, check_file_names, check_params,
    declared_arrays, read_arrays,
)
from router.routers.base import ROUTERS, SAVED_FORMS, Router, make_router, register_router, register_saved_form

__all__ = ["ROUTERS", "SAVED_FORMS", "NotFittedError", "Router", "make_router", "register_router", "register_saved_form",
           "check_new_folder", "save_router", "write_router", "load_router"]

FORMAT_VERSION = 3  # 1: a pickle (router.pkl), refused since it can run code when loaded; 2: no 'arrays' sizes
READ_FORMATS = (2, 3)  # format 2 (lm-routing before 'arrays') still loads: its npz headers are checked all the same
META_FILE, ARRAYS_FILE, ENCODER_FOLDER, PICKLE_FILE = "router.json", "arrays.npz", "encoder", "router.pkl"
MAX_META_BYTES = 50_000_000  # router.json holds hyper-parameters, the pool and file hashes: never this large
META_KEYS = {"format", "router", "params", "models", "n_models", "features", "encoder", "files", "arrays"}
MAX_MODELS = 100_000


def _saved_kinds() -> dict[str, type[Router]]:
    """Every router a saved router.json may name: trained by name, or rebuilt only (auto's pick)."""
    return {**ROUTERS, **SAVED_FORMS}


def check_new_folder(directory: Path) -> None:
    """Refuse a --save folder that exists: earlier routers are never overwritten."""
    if directory.exists():
        raise RoutingInputError(f"{directory}: already exists; choose a new --save folder (earlier routers are kept)")


def save_router(router: Router, directory: Path | str, models: tuple[str, ...]) -> Path:
    """Write a fitted router and the pool it routes over to the new folder `directory`, all or nothing."""
    directory = Path(directory)
    check_new_folder(directory)
    with Outputs() as outputs:
        write_router(router, outputs.folder(directory), models)
    return directory


def _saved_arrays(router: Router) -> dict[str, np.ndarray]:
    """Every array the saved form of the fitted `router` holds, by npz member name."""
    arrays = prefixed("router", router._state())
    if hasattr(router, "featurizer_"):
        arrays.update(prefixed("features", featurizer_state(router.featurizer_)[1]))
    return arrays


def write_router(router: Router, folder: Path, models: tuple[str, ...]) -> None:
    """The saved form, into the empty `folder`: arrays.npz (no pickles), encoder/ (safetensors) when the router
    has one, and router.json: format, router name, hyper-parameters, pool, features, sha256 of every file."""
    if not hasattr(router, "n_models_"):
        raise NotFittedError("only a fitted router can be saved")
    arrays = _saved_arrays(router)
    features = featurizer_state(router.featurizer_)[0] if hasattr(router, "featurizer_") else None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f"{type(router).__name__}._state()[{key!r}] is not a plain numpy array")
    encoder = None
    if hasattr(router, "encoder_"):
        router.encoder_.save(folder / ENCODER_FOLDER)
        encoder = {"pooling": router.encoder_.pooling, "max_length": router.encoder_.max_length}
    elif isinstance(getattr(router, "featurizer_", None), SentenceEmbeddings) and router.featurizer_.name.startswith(HF_PREFIX):
        router.featurizer_.encoder().save(folder / ENCODER_FOLDER)  # its own copy: a loaded router never fetches weights
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_new_file(folder / ARRAYS_FILE, buffer.getvalue())
    files = {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    meta = {"format": FORMAT_VERSION, "router": router.name, "params": router.get_params(), "models": list(models),
            "n_models": router.n_models_, "features": features, "encoder": encoder, "files": files,
            "arrays": declared_arrays(arrays)}
    write_new_file(folder / META_FILE, json.dumps(meta, indent=2) + "\n")


def load_router(directory: Path | str) -> tuple[Router, tuple[str, ...]]:
    """(router, pool models) saved by `save_router`. Nothing is built before router.json's shape and every
    file's sha256 are checked; arrays load without pickle and encoder weights from safetensors only."""
    directory = Path(directory)
    if (directory / PICKLE_FILE).exists():
        raise RoutingInputError(
            f"{directory}: saved by an older lm-routing as a pickle ({PICKLE_FILE}), which can run code when loaded; "
            "not loaded: save the router again with routing-eval --save"
        )
    meta = _read_meta(directory)
    _check_files(directory, meta["files"])
    return _build(directory, meta), tuple(meta["models"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_meta(directory: Path) -> dict:
    """router.json, checked key by key before anything is built."""
    path = directory / META_FILE
    if path.is_symlink() or not path.is_file():
        raise RoutingInputError(f"{directory}: no router.json; not a router saved by routing-eval --save")
    bad = lambda what: RoutingInputError(f"{path}: {what}; not a router saved by routing-eval --save, or damaged: save it again")  # noqa: E731
    if path.stat().st_size > MAX_META_BYTES:
        raise bad(f"over {MAX_META_BYTES} bytes")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise bad(f"not JSON ({_one_line(error)})") from None
    if not isinstance(meta, dict):
        raise bad(f"a JSON {type(meta).__name__}, not an object")
    if meta.get("format") not in READ_FORMATS or type(meta.get("format")) is not int:
        raise RoutingInputError(f"{path}: saved in format {str(meta.get('format'))[:20]!r}; this lm-routing reads formats "
                                f"{', '.join(map(str, READ_FORMATS))}: save the router again with routing-eval --save")
    expected = META_KEYS if meta["format"] == FORMAT_VERSION else META_KEYS - {"arrays"}
    if set(meta) != expected:
        raise bad(f"keys {', '.join(sorted(map(str, meta)))[:200]}, expected {', '.join(sorted(expected))}")
    name, models, files = meta["router"], meta["models"], meta["files"]
    kinds = _saved_kinds()
    if not isinstance(name, str) or name not in kinds:
        raise bad(f"unknown router {str(name)[:50]!r}")
    if (not isinstance(models, list) or not 0 < len(models) <= MAX_MODELS
            or not all(isinstance(m, str) and 0 < len(m) <= 500 for m in models)
            or len(set(models)) != len(models) or meta["n_models"] != len(models) or type(meta["n_models"]) is not int):
        raise bad("'models' must be a list of distinct model names, 'n_models' its length")
    if not isinstance(files, dict) or ARRAYS_FILE not in files or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in files.values()):
        raise bad(f"'files' must map each file (with {ARRAYS_FILE}) to its sha256")
    problem = (check_params(kinds[name], meta["params"]) or check_features(meta["features"])
               or check_encoder_spec(meta["encoder"]) or check_file_names(files)
               or (check_declared(meta["arrays"]) if "arrays" in meta else None))
    if problem:
        raise bad(problem)
    if _saved_encoder(meta) and meta["format"] != FORMAT_VERSION:
        raise RoutingInputError(f"{path}: its features load an encoder from outside the saved folder "
                                f"({meta['features']['name'][:80]!r}); not loaded: save the router again with "
                                "routing-eval --save (the saved folder then holds its own safetensors copy)")
    return meta


def _check_files(directory: Path, files: dict[str, str]) -> None:
    """Exactly the files router.json lists, none a link, each with its recorded sha256."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise RoutingInputError(f"{path}: a link inside a saved router; not loaded: save the router again")
        if path.is_file() and path != directory / META_FILE:
            found[path.relative_to(directory).as_posix()] = path
    extra, missing = sorted(found.keys() - files.keys()), sorted(files.keys() - found.keys())
    if extra or missing:
        what = f"unexpected file {extra[0]}" if extra else f"missing file {missing[0]}"
        raise RoutingInputError(f"{directory}: {what}, not what router.json lists; not loaded: save the router again")
    for name, path in found.items():
        if _sha256(path) != files[name]:
            raise RoutingInputError(f"{path}: changed since the router was saved (sha256 differs from router.json); "
                                    "not loaded: save the router again")


def _saved_encoder(meta: dict) -> bool:
    """Whether the router loads an encoder from its encoder/ folder (its own, or its hf: features')."""
    features = meta["features"]
    return meta["encoder"] is not None or (
        isinstance(features, dict) and features.get("kind") == "embeddings" and features["name"].startswith(HF_PREFIX))


def _build(directory: Path, meta: dict) -> Router:
    """The fitted router from checked files; any failure is one line naming the folder."""
    from router.limits import available_bytes

    arrays = read_arrays(directory / ARRAYS_FILE, meta.get("arrays"), available_bytes())
    encoder_folder = directory / ENCODER_FOLDER
    if _saved_encoder(meta):
        check_encoder_folder(encoder_folder, (meta["encoder"] or meta["features"])["max_length"])
    elif encoder_folder.exists():
        raise RoutingInputError(f"{encoder_folder}: an encoder this router does not use; not loaded: save the router again")
    try:
        router = _saved_kinds()[meta["router"]](**meta["params"])
        router.n_models_ = meta["n_models"]
        if meta["features"] is not None:
            router.featurizer_ = restore_featurizer(meta["features"], unprefixed("features", arrays), str(encoder_folder))
        if meta["encoder"] is not None:
            from router.encoders import TextEncoder, quiet_transformers

            with quiet_transformers():
                router.encoder_ = TextEncoder(str(directory / ENCODER_FOLDER), meta["encoder"]["pooling"],
                                              meta["encoder"]["max_length"], safetensors_only=True)
        router._restore(unprefixed("router", arrays))
        probe = router.predict_proba(["a probe query"])  # arrays of a wrong shape fail here, not on a user's query
        if probe.shape != (1, router.n_models_) or not np.isfinite(probe).all():
            raise ValueError(f"scores of shape {probe.shape} for {router.n_models_} models, or not finite")
        unused = sorted(arrays.keys() - _saved_arrays(router).keys())  # what this router would save again
        if unused:
            raise RoutingInputError(f"{directory / ARRAYS_FILE}: member {unused[0][:80]!r} is not part of a saved "
                                    f"{meta['router']} router; not loaded: save the router again")
    except RoutingInputError:
        raise
    except BaseException as error:  # a damaged file of the right hash: whatever fails, say which router and stop
        if not isinstance(error, Exception) and not _rust_panic(error):  # Ctrl-C, SystemExit: not a damaged file
            raise
        raise RoutingInputError(f"{directory}: cannot rebuild the saved router ({type(error).__name__}: "
                                f"{_one_line(error)}); save it again") from None
    return router


def _rust_panic(error: BaseException) -> bool:
    """Whether `error` is a panic inside a Rust library (tokenizers on a damaged Precompiled charsmap, safetensors):
    pyo3 raises it as a PanicException, a BaseException, which `except Exception` lets through as a traceback."""
    return type(error).__name__ == "PanicException"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]

