"""Routers by name: each predicts P(model solves query) for every model in the pool.

The contract (scikit-learn style): `__init__` stores hyper-parameters only;
`fit(queries, labels)` learns from query texts and an (n_queries, n_models)
0/1 label matrix and returns self; `predict_proba(queries)` returns an
(n_queries, n_models) array of probabilities 0-1; learned state ends in `_`.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from router.data import RoutingInputError

ROUTERS: dict[str, type[Router]] = {}
FORMAT_VERSION = 1


class NotFittedError(RuntimeError):
    """predict_proba was called before fit."""


class Router:
    """Base class: subclasses implement `_fit` and `_predict`."""

    name = "router"

    def fit(self, queries: list[str], labels: np.ndarray) -> Router:
        labels = np.asarray(labels, dtype=float)
        if labels.ndim != 2 or labels.shape[0] != len(queries) or labels.shape[0] == 0:
            raise ValueError(f"labels must be (n_queries, n_models) for {len(queries)} queries, got {labels.shape}")
        self.n_models_ = labels.shape[1]
        self._fit(list(queries), labels)
        return self

    def predict_proba(self, queries: list[str]) -> np.ndarray:
        if not hasattr(self, "n_models_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(queries, labels) or load a saved router")
        if len(queries) == 0:
            return np.zeros((0, self.n_models_))
        return np.clip(np.asarray(self._predict(list(queries)), dtype=float), 0.0, 1.0)

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def _fit(self, queries: list[str], labels: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, queries: list[str]) -> np.ndarray:
        raise NotImplementedError


def register_router(name: str):
    """Class decorator: make a Router subclass available as `--router name`."""

    def add(cls: type[Router]) -> type[Router]:
        cls.name = name
        ROUTERS[name] = cls
        return cls

    return add


def make_router(name: str, **params) -> Router:
    """A fresh router by registry name; unknown names raise RoutingInputError."""
    if name not in ROUTERS:
        raise RoutingInputError(f"unknown router {name!r}; choose one of: {', '.join(sorted(ROUTERS))}")
    return ROUTERS[name](**params)


def check_new_folder(directory: Path) -> None:
    """Refuse a --save folder that exists: earlier routers are never overwritten."""
    if directory.exists():
        raise RoutingInputError(f"{directory}: already exists; choose a new --save folder (earlier routers are kept)")


def save_router(router: Router, directory: Path | str, models: tuple[str, ...]) -> Path:
    """Write a fitted router and the pool it routes over to `directory` (must not exist)."""
    directory = Path(directory)
    check_new_folder(directory)
    if not hasattr(router, "n_models_"):
        raise NotFittedError("only a fitted router can be saved")
    tmp = directory.with_name(directory.name + ".tmp")
    tmp.mkdir(parents=True)
    (tmp / "router.pkl").write_bytes(pickle.dumps(router))
    meta = {"format": FORMAT_VERSION, "router": router.name, "params": router.get_params(), "models": list(models)}
    (tmp / "router.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    tmp.rename(directory)
    return directory


def load_router(directory: Path | str) -> tuple[Router, tuple[str, ...]]:
    """(router, pool models) saved by `save_router`."""
    directory = Path(directory)
    meta_path = directory / "router.json"
    if not meta_path.is_file():
        raise RoutingInputError(f"{directory}: no router.json; not a router saved by routing-eval --save")
    try:
        meta = json.loads(meta_path.read_text())
        router = pickle.loads((directory / "router.pkl").read_bytes())
    except (OSError, ValueError, pickle.UnpicklingError, AttributeError, ModuleNotFoundError) as error:
        raise RoutingInputError(f"{directory}: cannot load the saved router ({error}); save it again") from None
    if meta.get("format") != FORMAT_VERSION or not isinstance(router, Router):
        raise RoutingInputError(f"{directory}: saved by another version of lm-routing; save it again")
    return router, tuple(meta["models"])


from router.routers import cluster, contrastive, factorization, forest, knn, linear, mlp, transformer  # noqa: E402,F401  (registers the built-in routers)
