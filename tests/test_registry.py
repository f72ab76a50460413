"""The one Registry type: refuses taken names and wrong kinds, one unknown-name message, dict-like reading."""

from __future__ import annotations

import numpy as np
import pytest

from lm_routing.data import RoutingInputError as OldHome
from lm_routing.errors import NotFittedError, RoutingError, RoutingInputError, check_known
from lm_routing.learning.features import FEATURES, make_features
from lm_routing.deciding.policies import POLICIES, Policy, make_policy
from lm_routing.registry import Registry
from lm_routing.learning.routers import ROUTERS, SAVED_FORMS, Router, make_router, register_router
from lm_routing.learning.routers.knn import KnnRouter


class Echo(Router):
    def _fit(self, queries, labels):
        self.mean_ = labels.mean(axis=0)

    def _predict(self, queries):
        return np.tile(self.mean_, (len(queries), 1))


def test_a_taken_name_is_refused_even_for_a_router():
    with pytest.raises(ValueError, match="router 'knn' is already registered"):
        register_router("knn")(Echo)
    assert ROUTERS["knn"] is KnnRouter


def test_a_wrong_kind_is_refused_under_any_name():
    for name in ("knn", "echo-policy"):
        with pytest.raises(TypeError, match="is not a subclass of Router"):
            register_router(name)(Policy)
    with pytest.raises(TypeError, match="is not a subclass of Policy"):
        POLICIES.add("argmax", KnnRouter)
    with pytest.raises(TypeError, match="not callable"):
        FEATURES.add("bow", "bag of words")
    assert "echo-policy" not in ROUTERS and POLICIES["argmax"].__name__ == "ArgMax"


def test_a_new_router_registers_and_reads_like_a_dict():
    routers = Registry("router", Router)
    routers.register("echo")(Echo)
    routers.add("echo", Echo)  # the same entry again is no conflict
    assert list(routers) == ["echo"] and "echo" in routers and len(routers) == 1 and Echo.name == "echo"
    assert dict(routers) == {"echo": Echo} and routers.get("knn") is None
    with pytest.raises(KeyError):
        routers["knn"]


def test_the_built_in_routers_load_on_first_read_in_help_order():
    assert list(ROUTERS) == ["cluster", "contrastive", "mf", "rf", "knn", "lr", "mlp", "mlc", "sc", "auto"]  # auto: judging
    assert all(ROUTERS[name].name == name for name in ROUTERS)
    # auto trains by name (AutoRouter) and saves its pick, which loads as the one saved form (DeployedPick)
    assert list(SAVED_FORMS) == ["auto"] and SAVED_FORMS["auto"] is not ROUTERS["auto"] and ROUTERS["auto"].selects


@pytest.mark.parametrize("make, name, expect", [
    (make_router, "knnn", "unknown router 'knnn'; choose one of: cluster, contrastive, mf, rf, knn, lr, mlp, mlc, sc, auto; did you mean 'knn'?"),
    (make_policy, "argmx", "unknown policy 'argmx'; choose one of: argmax, random, prediction, sorted-prediction, stacked, fallback; did you mean 'argmax'?"),
    (make_features, "tfid", "unknown features 'tfid'; choose one of: tfidf, minilm, or hf:<hub id or local folder>; did you mean 'tfidf'?"),
    (make_router, "zzz", "unknown router 'zzz'; choose one of: cluster, contrastive, mf, rf, knn, lr, mlp, mlc, sc, auto"),
])
def test_one_unknown_name_message_with_the_closest_name(make, name, expect):
    with pytest.raises(RoutingInputError) as caught:
        make(name)
    assert str(caught.value) == expect


def test_unknown_names_from_a_field_are_all_named():
    with pytest.raises(RoutingInputError, match=r"^--cascade names unknown model\(s\) x, y; known: a, b$"):
        check_known("model", ["a", "x", "y"], ["a", "b"], source="--cascade")
    check_known("model", ["b", "a"], ["a", "b"])  # all known: no error


def test_one_error_family():
    assert OldHome is RoutingInputError and issubclass(RoutingInputError, (RoutingError, ValueError))
    assert issubclass(NotFittedError, (RoutingError, RuntimeError))
    with pytest.raises(NotFittedError, match="not fitted"):
        make_router("knn").predict_proba(["q"])
    with pytest.raises(NotFittedError, match="must be fit"):
        make_policy("stacked").choose(np.zeros((2, 2)))


def test_router_is_abstract_with_the_scikit_learn_contract():
    class Half(Router):
        def _fit(self, queries, labels):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Half()
    router = make_router("knn", n_neighbors=3)
    assert router.get_params() == {"n_neighbors": 3, "features": "tfidf"}
    assert router.set_params(n_neighbors=5) is router and router.n_neighbors == 5
    with pytest.raises(ValueError, match="no hyper-parameter"):
        router.set_params(k=5)
    fitted = Echo().fit(["a", "b"], np.array([[1, 0], [1, 1]]))
    assert fitted.predict_proba(["c"]).tolist() == [[1.0, 0.5]]
