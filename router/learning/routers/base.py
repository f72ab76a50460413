"""The `Router` contract and the registries of routers by name.

The contract (scikit-learn style): `__init__` stores hyper-parameters only;
`fit(queries, labels)` learns from query texts and an (n_queries, n_models)
0/1 label matrix and returns self; `predict_proba(queries)` returns an
(n_queries, n_models) array of probabilities 0-1; learned state ends in `_`.
The built-in routers are added to `ROUTERS` by lm_routing.learning.routers.builtin on the registry's first read.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod

import numpy as np

from lm_routing.errors import NotFittedError
from lm_routing.registry import Registry


def hyper_parameters(cls: type) -> dict[str, object]:
    """Router class `cls`'s hyper-parameters, name -> default (inspect.Parameter.empty where none): its `__init__`
    arguments, as scikit-learn's `_get_param_names` reads them. The one place their names come from: get_params,
    the spec (which router takes which), the saved format's checks and the CLI's help all ask here."""
    return {name: parameter.default for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)}


def store_hyper_parameters(router, arguments: dict) -> None:
    """A router's whole `__init__`: each argument (from `locals()`) becomes the attribute of that name."""
    for key, value in arguments.items():
        if key not in ("self", "__class__"):
            setattr(router, key, value)


class Router(ABC):
    """Base class: subclasses implement `_fit`, `_predict`, and for saving `_state` and `_restore`.

    `_state() -> {name: ndarray}`: every learned value as plain arrays (torch weights through
    `state_dict()` -> numpy), never objects; `_restore(arrays)` rebuilds the fitted router from
    them and the `__init__` hyper-parameters. A `featurizer_` (lm_routing.learning.features) or `encoder_`
    (lm_routing.learning.encoders.TextEncoder) is saved and restored by the format, before `_restore` runs.
    """

    name = "router"
    light = False  # True: fits in seconds on CPU, so `auto` tries it and its folds are fit in parallel
    heavy = False  # True when a fit is expensive (e.g. fine-tunes an encoder): extra fits are not run unasked
    uses_datasets = False  # True when predict_proba reads the queries' dataset names (callers then look them up)
    selects = False  # True when fit chooses and deploys a policy too (auto): one "pick" row, not router x policy

    def fit(self, queries: list[str], labels: np.ndarray) -> Router:
        labels = np.asarray(labels, dtype=float)
        if labels.ndim != 2 or labels.shape[0] != len(queries) or labels.shape[0] == 0:
            raise ValueError(f"labels must be (n_queries, n_models) for {len(queries)} queries, got {labels.shape}")
        self.n_models_ = labels.shape[1]
        self._fit(list(queries), labels)
        return self

    def predict_proba(self, queries: list[str], datasets: list[str | None] | None = None) -> np.ndarray:
        """(len(queries), n_models_) P(solve). `datasets`: each query's dataset where the caller knows it
        (None where not); only a router that routes on it uses it (auto's best single model per dataset)."""
        if not hasattr(self, "n_models_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(queries, labels) or load a saved router")
        if len(queries) == 0:
            return np.zeros((0, self.n_models_))
        return np.clip(np.asarray(self._predict(list(queries)), dtype=float), 0.0, 1.0)

    def saved_form(self) -> Router:
        """What saving this fitted router writes: itself; a router that deploys another (auto) returns that one."""
        return self

    def check_ready(self) -> None:
        """Raise RoutingInputError now, before any training, for what would stop `fit` later (e.g. an
        encoder that cannot load); a no-op unless a router needs more than its hyper-parameters."""

    def get_params(self, deep: bool = True) -> dict:
        """The hyper-parameters `__init__` stored (scikit-learn's contract; `deep` is accepted, nothing nests)."""
        return {name: getattr(self, name) for name in hyper_parameters(type(self))}

    def set_params(self, **params) -> Router:
        """Set hyper-parameters by name (scikit-learn's contract); an unknown name raises ValueError."""
        unknown = sorted(set(params) - set(self.get_params()))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyper-parameter(s) {', '.join(unknown)}")
        vars(self).update(params)
        return self

    @abstractmethod
    def _fit(self, queries: list[str], labels: np.ndarray) -> None:
        """Learn from `queries` and their (n_queries, n_models) 0/1 labels; `n_models_` is already set."""

    @abstractmethod
    def _predict(self, queries: list[str]) -> np.ndarray:
        """(len(queries), n_models_) P(solve); clipped to 0-1 by `predict_proba`."""

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no saved form: implement _state and _restore")

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no saved form: implement _state and _restore")


# the built-ins, then auto (lm_routing.judging.auto): named by strings, so learning never imports judging
ROUTERS: Registry[type[Router]] = Registry("router", Router, load=("lm_routing.learning.routers.builtin:add_routers",
                                                                 "lm_routing.judging.auto:add_auto"))
# routers load_router rebuilds though they are not trained by name (auto's pick)
SAVED_FORMS: Registry[type[Router]] = Registry("saved router", Router, load="lm_routing.judging.select:add_saved_forms")
register_router = ROUTERS.register  # class decorator: a Router subclass available by its name


def make_router(name: str, **params) -> Router:
    """A fresh router by registry name; unknown names raise RoutingInputError."""
    return ROUTERS.lookup(name)(**params)
