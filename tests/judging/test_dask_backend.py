"""Cross-fitting and `auto` on a real Dask cluster (LocalCluster, 2 worker processes): the scores and the
table of a local run, exactly; an unreachable scheduler is one line, exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lm_routing.judging.crossfit import cross_fit_scores
from lm_routing.judging.dask_backend import on_scheduler
from lm_routing.errors import RoutingInputError
from lm_routing.reading.logs import read_score_table

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def tables(shared_data, tmp_path_factory):
    """RouterDC GSM8K test queries as a small train (520) / test (200) pair of score tables."""
    rows = json.loads((shared_data / "routing" / "routerdc-7llm" / "gsm8k_test.json").read_text())[:720]
    folder = tmp_path_factory.mktemp("dask_tables")
    (folder / "gsm8k_train.json").write_text(json.dumps(rows[:520]))
    (folder / "gsm8k_test.json").write_text(json.dumps(rows[520:]))
    return folder / "gsm8k_train.json", folder / "gsm8k_test.json"


def test_cross_fitting_on_the_cluster_equals_local_processes(cluster, tables):
    data = read_score_table(tables[0], "train", 0.5)
    local = cross_fit_scores("knn", {}, data, 5, seed=1, n_jobs=2)
    with on_scheduler(cluster.scheduler_address):
        remote = cross_fit_scores("knn", {}, data, 5, seed=1)
        lr_remote = cross_fit_scores("lr", {}, data, 5, seed=1)
    np.testing.assert_array_equal(local, remote)
    lr_local = cross_fit_scores("lr", {}, data, 5, seed=1, n_jobs=1)
    # lbfgs sums in BLAS, whose thread count differs between the main process and a 1-thread worker: equal to
    # the last bits (1e-15), and the same model chosen for every query
    np.testing.assert_allclose(lr_local, lr_remote, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(lr_local.argmax(axis=1), lr_remote.argmax(axis=1))
    assert any("_fold_scores" in prefix for prefix in cluster.scheduler.task_prefixes)  # the folds ran on its workers


def test_auto_on_the_cluster_gives_the_local_table(cluster, tables, routing_eval):
    base = ["--scores", tables[0], "--test-scores", tables[1], "--features", "tfidf", "--json", "--seed", "3"]
    local = routing_eval(*base)
    remote = routing_eval(*base, "--scheduler", cluster.scheduler_address)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert "auto picked" in local.stdout


def test_unreachable_scheduler_is_one_line(monkeypatch, routing_eval, tables):
    with pytest.raises(RoutingInputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        monkeypatch.setattr("lm_routing.judging.dask_backend.CONNECT_TIMEOUT_S", 2)
        with on_scheduler("tcp://127.0.0.1:9"):
            pass
    done = routing_eval("--scores", tables[0], "--test-scores", tables[1], "--router", "knn", "--scheduler",
                        "tcp://127.0.0.1:9")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot reach the Dask scheduler" in done.stderr
