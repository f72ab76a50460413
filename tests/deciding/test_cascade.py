"""Offline cascades over the K samples: hand-computed tiny cases, agreement read from real and simulated logs."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from lm_routing.cli.notes import say
from lm_routing.deciding.cascade import THRESHOLDS, CascadePoint, cascade_choices, chain_indices, choose_threshold, sweep_thresholds
from lm_routing.data import RoutingInputError, build_routing_data, concat
from lm_routing.judging.evaluate import evaluate
from lm_routing.judging.spec import EvalSpec
from lm_routing.reading.logs import read_harness_logs, read_score_table, sample_agreement
from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

MODELS = ["a", "b", "c"]
LATENCY = {"a": 1.0, "b": 2.0, "c": 5.0}  # s/query
# per query: model -> (label, agreement)
QUERIES = [
    {"a": (1, 0.9), "b": (0, 0.5), "c": (1, 1.0)},
    {"a": (0, 0.5), "b": (1, 0.8), "c": (0, 0.6)},
    {"a": (0, 0.3), "b": (0, 0.2), "c": (1, 0.9)},
    {"a": (0, 0.8), "b": (1, 0.1), "c": (1, 0.2)},
]


def toy(queries=QUERIES, split="test", prefix="q", unknown=()) -> object:
    """RoutingData of `queries`; models in `unknown` get 4-tuples (agreement unknown)."""
    rows = [
        {
            "id": f"{prefix}{i}", "query": f"{prefix} number {i}", "dataset": "toy" if i % 2 else "other", "split": split,
            "results": {m: (float(y), float(y), None, LATENCY[m]) + (() if m in unknown else (a,)) for m, (y, a) in q.items()},
        }
        for i, q in enumerate(queries)
    ]
    return build_routing_data(rows, MODELS)


def test_accepts_the_first_member_that_agrees_enough_and_sums_the_seconds_of_every_member_run():
    accepted, seconds = cascade_choices(toy(), [0, 1, 2], 0.8)
    # q0: a agrees 0.9; q1: a 0.5 < 0.8, b 0.8; q2: a and b below, c always accepted; q3: a 0.8 (>= is enough)
    assert accepted.tolist() == [0, 1, 2, 0]
    assert seconds.tolist() == [1.0, 3.0, 8.0, 1.0]
    accepted, seconds = cascade_choices(toy(), [0, 2], 0.8)
    assert accepted.tolist() == [0, 2, 2, 0] and seconds.tolist() == [1.0, 6.0, 6.0, 1.0]


def test_threshold_zero_never_escalates_and_above_one_runs_the_whole_chain():
    accepted, seconds = cascade_choices(toy(), [0, 1, 2], 0.0)
    assert accepted.tolist() == [0] * 4 and seconds.tolist() == [1.0] * 4
    accepted, seconds = cascade_choices(toy(), [0, 1, 2], 1.01)
    assert accepted.tolist() == [2] * 4 and seconds.tolist() == [8.0] * 4


def test_sweep_points_accuracy_seconds_and_escalation():
    points = sweep_thresholds(toy(), [0, 1, 2], (0.0, 0.8, 1.01))
    assert points == [
        CascadePoint(threshold=0.0, accuracy=0.25, seconds=1.0, escalated=0.0),
        CascadePoint(threshold=0.8, accuracy=0.75, seconds=3.25, escalated=0.5),
        CascadePoint(threshold=1.01, accuracy=0.75, seconds=8.0, escalated=1.0),
    ]
    default = sweep_thresholds(toy(), [0, 1, 2])
    assert [p.threshold for p in default] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert all(p.seconds <= q.seconds and p.escalated <= q.escalated for p, q in zip(default, default[1:]))


def test_threshold_chosen_on_training_queries_is_the_lowest_with_the_best_accuracy():
    # accuracy by threshold: 0.25 up to 0.3, 0.5 at 0.4-0.5, 0.75 from 0.6 on (0.6 escalates least)
    chosen = choose_threshold(toy(split="train"), [0, 1, 2])
    assert chosen == CascadePoint(threshold=0.6, accuracy=0.75, seconds=3.25, escalated=0.5)
    assert choose_threshold(toy(split="train"), [0, 1, 2], (1.0, 0.9)).threshold == 0.9  # order given does not matter
    # within the tolerance, the cheaper threshold wins: 0.5 at 0.4 is 0.25 below the best
    assert choose_threshold(toy(split="train"), [0, 1, 2], tolerance=0.25).threshold == 0.4


def test_unknown_agreement_names_the_model_but_the_last_member_never_decides():
    data = toy(unknown=("c",))
    assert np.isnan(data.agreement[:, 2]).all() and not np.isnan(data.agreement[:, :2]).any()
    assert cascade_choices(data, [0, 1, 2], 0.8)[0].tolist() == [0, 1, 2, 0]
    with pytest.raises(RoutingInputError, match=r"^cascade needs each member's K samples; c's logs have none"):
        cascade_choices(data, [2, 0], 0.8)


def test_chain_names_unknown_repeated_or_single():
    data = toy()
    assert chain_indices(data, ("c", "a")) == [2, 0]
    with pytest.raises(RoutingInputError, match=r"unknown model\(s\) zz; known: a, b, c"):
        chain_indices(data, ("a", "zz"))
    for names in (("a",), ("a", "a")):
        with pytest.raises(RoutingInputError, match="2 or more different models"):
            chain_indices(data, names)


def test_every_slicing_and_combining_method_carries_agreement():
    data = toy()
    assert data.agreement[:, 0].tolist() == [0.9, 0.5, 0.3, 0.8]
    assert data.take([3, 1]).agreement[:, 1].tolist() == [0.1, 0.8]
    assert data.take(np.array([True, False, False, True])).agreement[:, 2].tolist() == [1.0, 0.2]
    assert data.only_datasets(["toy"]).agreement[:, 0].tolist() == [0.5, 0.8]
    assert data.with_latency({"a": 9.0}).agreement.tolist() == data.agreement.tolist()
    both = concat([toy(split="train", prefix="t"), toy(unknown=("b",))])
    assert both.split("train").agreement.tolist() == data.agreement.tolist()
    assert np.isnan(both.split("test").agreement[:, 1]).all() and both.split("test").agreement[:, 2].tolist() == [1.0, 0.6, 0.9, 0.2]


def test_evaluate_adds_a_cascade_row_with_seconds_spent_and_the_threshold_chosen_on_train():
    data = concat([toy(split="train", prefix="t"), toy()])
    result = evaluate(data, EvalSpec(routers=(), policies=(), cascades=(("a", "b", "c"),)))
    row = next(r for r in result.rows if r.method.startswith("cascade:"))
    assert row.method == "cascade:a>b>c@0.6"  # chosen on the training queries
    assert (row.accuracy, row.latency_s, row.n) == (0.75, 3.25, 4)
    assert row.share == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert row.vs_best is not None and row.vs_best.difference == 0.0  # best single model c: 0.75 too
    assert any("threshold 0.6 chosen on 4 training queries" in say(note) for note in result.notes)
    assert any("50.0% of evaluated queries escalated past a" in say(note) for note in result.notes)

    fixed = evaluate(data, EvalSpec(routers=(), policies=(), cascades=(("a", "c"),), cascade_threshold=0.0))
    assert [(r.method, r.accuracy, r.latency_s) for r in fixed.rows if r.method.startswith("cascade:")] == [
        ("cascade:a>c@0", 0.25, 1.0)
    ]
    test_only = evaluate(toy(), EvalSpec(routers=(), policies=(), folds=2, cascades=(("a", "c"),)))
    assert any(r.method == "cascade:a>c@0.8" for r in test_only.rows)
    assert any("no training queries to choose a threshold on; using 0.8" in say(note) for note in test_only.notes)
    with pytest.raises(RoutingInputError, match="unknown model"):
        evaluate(data, EvalSpec(routers=(), policies=(), cascades=(("a", "gpt"),)))


def test_sample_agreement_of_one_list_of_k_answers_else_nan():
    assert sample_agreement([["18", "17", "[invalid]", "18"]]) == 0.5
    assert sample_agreement([["[invalid]", "[invalid]"]]) == 0.0
    for shape in (["18"], [["18"]], "18", [["1", "1"], ["1", "1"]], [["1", 2]], None, []):
        assert math.isnan(sample_agreement(shape)), shape


def test_score_tables_carry_no_agreement(tmp_path):
    path = tmp_path / "toy_test.json"
    path.write_text(json.dumps([{"question": f"q{i}", "scores": {"a": 1.0, "b": 0.0}} for i in range(3)]))
    data = read_score_table(path, "test")
    assert data.agreement.shape == (3, 2) and np.isnan(data.agreement).all()
    with pytest.raises(RoutingInputError, match="score tables carry no samples"):
        cascade_choices(data, [0, 1], 0.5)


def _expected_agreement(filtered_resps) -> float:
    """Vote share of the most common parseable answer among the K samples, computed here by hand."""
    (answers,) = filtered_resps
    votes = Counter(a for a in answers if a != "[invalid]")
    return max(votes.values()) / len(answers) if votes else 0.0


def _check_agreement_against_samples(data, logs) -> int:
    """Each (query, model) agreement equals the one recomputed from its sample file; returns the number checked."""
    checked = 0
    for j, model in enumerate(data.models):
        folder = next(p for p in logs.iterdir() if p.is_dir() and model.endswith(p.name.split("__")[-1]))
        rows = {}
        for path in folder.glob("samples_*.jsonl"):
            rows.update({f"{r['doc_hash']}#{r['doc_id']}": r for r in map(json.loads, path.open())})
        for i, query_id in enumerate(data.query_ids):
            responses = rows[query_id]["filtered_resps"]
            assert len(responses) == 1 and len(responses[0]) == 10  # one list of K=10 answers
            assert data.agreement[i, j] == pytest.approx(_expected_agreement(responses))
            checked += 1
    return checked


@pytest.mark.slow
def test_agreement_from_real_lm_eval_logs(harness_logs):
    data = read_harness_logs(harness_logs)
    assert not np.isnan(data.agreement).any()
    assert _check_agreement_against_samples(data, harness_logs) == 8


def test_agreement_from_simulated_logs_and_a_cascade_over_them(tmp_path):
    pool = tuple(m for m in PAPER_POOL if m.name in ("gemma-7b", "gemma-7b-it"))
    logs = write_simulated_logs(tmp_path, seed=0, pool=pool, splits={"train": {"gsm8k": 30, "mmlu": 1}, "test": {"gsm8k": 20, "mmlu": 1}})
    data = read_harness_logs(logs / "gsm8k")
    assert _check_agreement_against_samples(data, logs / "gsm8k") == 100
    assert len(set(data.agreement.flat)) > 2  # samples disagree to varying degrees
    cheap, best = data.models.index("gemma-7b-it"), data.models.index("gemma-7b")
    for point in sweep_thresholds(data, [cheap, best], THRESHOLDS):
        escalate = data.agreement[:, cheap] < point.threshold
        assert point.escalated == pytest.approx(escalate.mean())
        assert point.seconds == pytest.approx(0.7 + 7.1 * escalate.mean())  # the pool's s/query
        assert point.accuracy == pytest.approx(np.where(escalate, data.labels[:, best], data.labels[:, cheap]).mean())


# Agreement cascades across models --------------------------------------------------------------------------

from lm_routing.deciding.cascade import (  # noqa: E402
    AgreementCascade, agreement_candidates, agreement_choices, choose_agreement_cascade, distinct_shares,
    evaluate_agreement, parse_agreement_cascade,
)
from lm_routing.data import RoutingData  # noqa: E402


def priced(answers, labels, cost=(1.0, 2.0, 10.0), datasets=None, split="test") -> RoutingData:
    """Queries x models (a, b, c) with the given answers, labels and a cost per model (USD per query)."""
    n = len(answers)
    rows = [{"id": f"q{i}", "query": f"query {i}", "dataset": (datasets or ["arc"] * n)[i], "split": split,
             "results": {m: (float(labels[i][j]), math.nan, answers[i][j], 1.0) for j, m in enumerate("abc")},
             "usage": {m: (math.nan, math.nan, cost[j]) for j, m in enumerate("abc")}} for i in range(n)]
    return build_routing_data(rows, list("abc"))


ANSWERS = [["A", "A", "A"], ["A", "B", "B"], [None, "C", "C"], ["D", "D", "B"]]
LABELS = [[1, 1, 1], [0, 1, 1], [0, 1, 1], [0, 0, 1]]


def test_agreement_accepts_when_cheap_members_agree_and_counts_every_member_run():
    data = priced(ANSWERS, LABELS)
    correct, usd, stage = agreement_choices(data, AgreementCascade(((0, 1), (2,)), share=1.0))
    assert stage.tolist() == [0, 1, 1, 0]  # agree on q0 and q3 (wrongly: D), disagree or no answer otherwise
    assert correct.tolist() == [1, 1, 1, 0] and usd.tolist() == [3, 13, 13, 3]
    result = evaluate_agreement(data, AgreementCascade(((0, 1), (2,)), share=1.0))
    assert (result.accuracy, result.cost, result.escalated, result.unit) == (0.75, 8.0, 0.5, "USD")
    half = agreement_choices(data, AgreementCascade(((0, 1), (2,)), share=0.5))  # any answer: a's unless a has none
    assert half[2].tolist() == [0, 0, 0, 0] and half[0].tolist() == [1, 0, 1, 0]


def test_agreement_cascade_without_costs_counts_seconds():
    data = priced(ANSWERS, LABELS)
    unpriced = data.take(np.arange(4))
    object.__setattr__(unpriced, "cost", np.full((4, 3), np.nan))
    assert evaluate_agreement(unpriced, AgreementCascade(((0, 1), (2,)))).unit == "s"


def test_uncomparable_answers_are_refused_in_one_line():
    no_answers = priced([[None] * 3] * 4, LABELS)
    with pytest.raises(RoutingInputError, match="a has no answers to compare"):
        evaluate_agreement(no_answers, AgreementCascade(((0, 1), (2,))))
    code = priced(ANSWERS, LABELS, datasets=["humaneval"] * 4)
    with pytest.raises(RoutingInputError, match="dataset humaneval has programs as answers"):
        evaluate_agreement(code, AgreementCascade(((0, 1), (2,))))


@pytest.mark.parametrize("text", ["A>", "A+B", "A+B>C+D", "A+A>B", ">B", "A+>B"])
def test_bad_agreement_cascade_specs(text):
    with pytest.raises(RoutingInputError, match="expected cheap models joined by"):
        parse_agreement_cascade(text)


def test_parse_and_shares():
    assert parse_agreement_cascade("a + b>c") == (("a", "b"), ("c",))
    assert distinct_shares(2) == [0.5, 1.0] and distinct_shares(3) == [2 / 3, 1.0]


def test_chooser_uses_training_queries_only_with_a_tolerance_or_a_budget():
    train = priced(ANSWERS * 5, LABELS * 5, split="train")
    candidates = agreement_candidates(train, sizes=(2,))
    assert {c.stages for c in candidates} == {((0, 1), (2,))}  # c is the most accurate: the final model
    exact = choose_agreement_cascade(train, tolerance=0.0)
    assert exact.cascade.share == 0.5 or exact.accuracy >= 1.0 - 1e-12 or exact.cost < 10  # never costlier than c alone
    loose = choose_agreement_cascade(train, tolerance=0.3)
    assert loose.cost <= 8.0 and loose.accuracy >= 0.7
    within = choose_agreement_cascade(train, budget=3.0)
    assert within.cost <= 3.0
    with pytest.raises(RoutingInputError, match="no agreement cascade costs 0.5 USD/query or less"):
        choose_agreement_cascade(train, budget=0.5)


def test_evaluate_adds_named_and_chosen_agreement_cascade_rows(shared_data):
    tables = [read_score_table(shared_data / f"routing/routerbench/arc_challenge_{s}.csv", s, on_missing="drop")
              for s in ("train", "test")]
    data = concat(tables)
    named = (("zero-one-ai/Yi-34B-Chat", "mistralai/mixtral-8x7b-chat"), ("gpt-4-1106-preview",))
    evaluation = evaluate(data, EvalSpec(routers=(), policies=("argmax",), agree_cascades=(named,), agree_share=1.0))
    (row,) = [r for r in evaluation.rows if r.kind == "cascade"]
    assert row.method == "cascade:zero-one-ai/Yi-34B-Chat+mistralai/mixtral-8x7b-chat>gpt-4-1106-preview@1"
    gpt4 = next(r for r in evaluation.rows if r.method == "model:gpt-4-1106-preview")
    assert row.cost < 0.5 * gpt4.cost and abs(row.accuracy - gpt4.accuracy) < 0.02
    chosen = evaluate(data, EvalSpec(routers=(), policies=("argmax",)))
    (auto_row,) = [r for r in chosen.rows if r.kind == "cascade"]
    assert auto_row.cost < gpt4.cost and any("chosen on 1019 training queries" in say(n) for n in chosen.notes)
