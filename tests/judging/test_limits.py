"""The up-front estimate counts every worker process, and a run past it is refused in one line (exit code 2)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

from lm_routing.cli.notes import say
from lm_routing.judging.limits import AUTO_BYTES, AUTO_CPU_SECONDS, estimate_run, fit_bytes, plan_auto
from lm_routing.deciding.policies import POLICIES
from lm_routing.judging.select import default_features, light_routers

ROUTING_EVAL = Path(sys.executable).with_name("routing-eval")


def test_workers_are_counted_and_memory_grows_with_queries_times_models():
    candidates = light_routers() * len(default_features())
    one = estimate_run(3000, 600, 100, candidates, ["argmax"], workers=1, every_query_out_of_fold=True)
    two = estimate_run(3000, 600, 100, candidates, ["argmax"], workers=2, every_query_out_of_fold=True)
    assert two.workers == 2 and two.worker_bytes > 0 and two.total_bytes > one.total_bytes
    assert two.total_bytes == two.main_bytes + 2 * two.worker_bytes
    ten_x = estimate_run(30000, 6000, 100, candidates, ["argmax"], workers=2, every_query_out_of_fold=True)
    assert 9 < ten_x.total_bytes / two.total_bytes < 11  # linear in queries x models
    assert fit_bytes("rf", 64_000, 100) > 8e9  # 200 trees x 100 outputs: the 8.6 GB per worker of issue 25, and more


def test_an_oversize_run_is_refused_up_front_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    models = [f"m{j}" for j in range(100)]
    paths = []
    for split, n in (("train", 3000), ("test", 600)):
        rows = [{"question": f"question {i} about {rng.integers(1000)}", "scores": dict(zip(models, map(float, rng.integers(0, 2, 100))))}
                for i in range(n)]
        paths.append(tmp_path / f"pool_{split}.json")
        paths[-1].write_text(json.dumps(rows))
    need = estimate_run(3000, 600, 100, ["rf"], list(POLICIES), workers=os.cpu_count() or 1).total_bytes
    limit = int(need * 0.9)  # the estimate does not fit; the CLI itself starts well within it

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run([str(ROUTING_EVAL), "--scores", str(paths[0]), "--test-scores", str(paths[1]), "--router", "rf"],
                          capture_output=True, text=True, preexec_fn=cap_memory, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "3600 queries x 100 models" in done.stderr and "min of CPU" in done.stderr
    assert "worker processes" in done.stderr or (os.cpu_count() or 1) == 1


def test_auto_plan_keeps_every_candidate_where_affordable_and_fits_the_budget_beyond():
    every = light_routers()
    assert plan_auto(7473, 1319, 7, ["tfidf", "minilm"], 5, 2)[:2] == (every, ["tfidf", "minilm"])  # RouterDC GSM8K
    routers, features, _ = plan_auto(80_000, 20_000, 100, ["tfidf", "minilm"], 5, 2)  # 10M outcomes
    assert features == ["tfidf"] and "knn" in routers and "rf" not in routers and len(routers) < len(every)
    assert routers == [r for r in every if r in routers]  # registry order kept
    estimate = estimate_run(80_000, 20_000, 100, routers, (), 5, 2, True)
    assert estimate.cpu_seconds <= AUTO_CPU_SECONDS and estimate.total_bytes <= AUTO_BYTES


def test_auto_plan_says_what_it_dropped_and_why_and_refuses_what_cannot_fit():
    from lm_routing.data import RoutingInputError

    assert plan_auto(7473, 1319, 7, ["tfidf", "minilm"], 5, 2)[2] is None  # nothing dropped: no note
    routers, features, note = plan_auto(80_000, 20_000, 100, ["tfidf", "minilm"], 5, 2)  # 10M outcomes
    assert note.code == "auto-plan-dropped" and note.dropped_features == ("minilm",)
    assert set(note.dropped_routers) == set(light_routers()) - set(routers) and "rf" in note.dropped_routers
    assert note.cpu_seconds > note.cpu_limit == AUTO_CPU_SECONDS and note.bytes_limit == AUTO_BYTES
    assert json.loads(json.dumps(note.to_json()))["dropped_features"] == ["minilm"]
    line = say(note.as_note())
    assert "rf" in line and "CPU-s" in line and "\n" not in line
    assert plan_auto(80_000, 20_000, 100, ["tfidf", "minilm"], 5, 2) == (routers, features, note)  # from sizes alone
    try:
        plan_auto(800_000, 200_000, 100, ["tfidf"], 5, 2)  # 100M outcomes: not even one candidate fits
    except RoutingInputError as error:
        assert "cheapest candidate" in str(error) and "GiB" in str(error) and "\n" not in str(error)
    else:
        raise AssertionError("100M outcomes were not refused")


def test_an_evaluation_notes_the_candidates_auto_dropped(monkeypatch):
    """Under a CPU limit the smallest table exceeds, auto drops candidates and the evaluation's notes say which."""
    import lm_routing.judging.limits
    from lm_routing.data import RoutingData
    from lm_routing.judging.evaluate import evaluate
    from lm_routing.judging.spec import EvalSpec

    rng = np.random.default_rng(0)
    n = 120
    labels = (rng.random((n, 2)) < [0.7, 0.5]).astype(float)
    data = RoutingData(query_ids=tuple(f"q{i}" for i in range(n)), queries=tuple(f"query {i} word{i % 7}" for i in range(n)),
                       datasets=("toy",) * n, splits=("train",) * 80 + ("test",) * 40, models=("m0", "m1"),
                       labels=labels, solve_rates=labels.copy(), answers=np.full((n, 2), None, dtype=object),
                       latency=np.full((n, 2), np.nan), latency_source=("unknown",) * 2)
    every = estimate_run(80, 40, 2, light_routers(), (), 5, 1, True).cpu_seconds
    monkeypatch.setattr(lm_routing.judging.limits, "AUTO_CPU_SECONDS", every * 0.9)  # the costliest candidate must go
    evaluation = evaluate(data, EvalSpec(routers=("auto",), policies=("argmax",), hyper={"features": "tfidf"}))
    notes = [note for note in evaluation.notes if note.code == "auto-plan-dropped"]
    assert len(notes) == 1 and notes[0].fields["dropped_routers"] and say(notes[0]).startswith("auto left out routers ")
