"""EvalSpec routes hyper-parameters to the routers that take them, and names the ones some router ignores."""

from __future__ import annotations

from pathlib import Path

from lm_routing.judging.spec import EvalSpec, Unused


def test_learning_rate_for_router_lr_is_reported_not_dropped_silently():
    spec = EvalSpec(routers=("lr",), hyper={"lr": 0.1, "epochs": None})
    assert spec.router_params() == {"lr": {}}
    assert spec.unused_params() == [Unused("lr", ("lr",), ())]


def test_params_go_to_the_routers_that_take_them():
    spec = EvalSpec(routers=("knn", "mlc"), hyper={"epochs": 3, "features": "tfidf"})
    params = spec.router_params()
    assert params["mlc"]["epochs"] == 3 and "epochs" not in params["knn"]
    assert params["knn"]["features"] == "tfidf"
    assert Unused("epochs", ("knn",), ("mlc",)) in spec.unused_params()


def test_auto_takes_features_and_saved_routers_replace_the_default():
    assert EvalSpec(hyper={"features": "tfidf"}).unused_params() == []
    loaded = EvalSpec(routers_named=False, load_dirs=(Path("saved"),), hyper={"epochs": 2})
    assert loaded.trained_routers() == [] and loaded.unused_params() == []
