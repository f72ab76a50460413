"""Reading real lm-eval output and score tables into RoutingData."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from lm_routing.data import RoutingInputError
from lm_routing.errors import Note
from lm_routing.reading.harness import routed_output
from lm_routing.reading.logs import ReadOptions, read_harness_logs, read_score_table


def _samples(folder):
    return {p.name.split("_2")[0]: [json.loads(line) for line in p.open()] for p in folder.glob("samples_*.jsonl")}


@pytest.mark.slow
def test_joins_two_real_models_across_prompt_variants(harness_logs):
    data = read_harness_logs(harness_logs)
    assert data.n_queries == 4 and data.n_models == 2
    assert set(data.datasets) == {"gsm8k"} and set(data.splits) == {"test"}
    assert data.queries[0].startswith("Janet")
    for j, model in enumerate(data.models):
        folder = next(p for p in harness_logs.iterdir() if p.is_dir() and model.endswith(p.name.split("__")[-1]))
        (rows,) = _samples(folder).values()
        by_hash = {r["doc_hash"]: r for r in rows}
        for i, query_id in enumerate(data.query_ids):
            row = by_hash[query_id.split("#")[0]]
            assert data.labels[i, j] == row["maj@10"]
            assert data.solve_rates[i, j] == row["solve_rate"]
            assert data.answers[i, j] == (None if row["majority"] == "[invalid]" else row["majority"])
        results = json.loads(next(folder.glob("results_*.json")).read_text())
        assert data.latency[:, j] == pytest.approx(float(results["total_evaluation_time_seconds"]) / 4)
    assert data.report.joined == 4 and data.report.skipped == ()


@pytest.mark.slow
def test_missing_documents_stop_or_are_dropped_and_reported(harness_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(harness_logs, logs)
    victim = sorted(logs.glob("*/samples_*.jsonl"))[0]
    lines = victim.read_text().splitlines()
    victim.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(RoutingInputError, match=r"lacks 1 of 4 documents.*on_missing drop"):
        read_harness_logs(logs)
    data = read_harness_logs(logs, ReadOptions(on_missing="drop"))
    assert data.n_queries == 3
    assert data.report.skipped == ((Note("not-logged-for-every-model", ("on_missing",)), 1),)


@pytest.mark.slow
def test_malformed_line_names_file_and_line(harness_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(harness_logs, logs)
    victim = sorted(logs.glob("*/samples_*.jsonl"))[1]
    lines = victim.read_text().splitlines()
    lines[1] = lines[1][:40]
    victim.write_text("\n".join(lines) + "\n")
    with pytest.raises(RoutingInputError, match=rf"{victim.name}:2: malformed JSON line"):
        read_harness_logs(logs)
    data = read_harness_logs(logs, ReadOptions(skip_bad_lines=True, on_missing="drop"))
    assert data.n_queries == 3
    assert any(why.code == "malformed-lines-skipped" and [line.rpartition("/")[2] for line in why.fields["lines"]] == [f"{victim.name}:2"]
               for why, _ in data.report.skipped)


def test_no_logs_folder_says_what_to_do(tmp_path):
    with pytest.raises(RoutingInputError, match="no such folder; run lm_eval --log_samples"):
        read_harness_logs(tmp_path / "nope")
    with pytest.raises(RoutingInputError, match="no results_\\*.json found"):
        read_harness_logs(tmp_path)


def test_routerdc_table(tmp_path):
    path = tmp_path / "toy_test.json"
    path.write_text(json.dumps([
        {"question": "1+1?", "scores": {"a": 0.9, "b": 0.2}},
        {"question": "2+2?", "scores": {"a": 0.5, "b": 0.49}},
    ]))
    data = read_score_table(path, "test")
    assert data.models == ("a", "b") and data.datasets == ("toy", "toy")
    assert data.labels.tolist() == [[1, 0], [1, 0]]
    assert data.solve_rates.tolist() == [[0.9, 0.2], [0.5, 0.49]]
    assert read_score_table(path, "test", threshold=0.3).labels.tolist() == [[1, 0], [1, 1]]
    assert np.isnan(data.model_latency).all()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_long_tables(tmp_path, suffix):
    rows = [("q one", "a", 1.0), ("q one", "b", 0.0), ("q two", "a", 0.0), ("q two", "b", 0.7)]
    path = tmp_path / f"bench{suffix}"
    if suffix == ".csv":
        path.write_text("query,model,score\n" + "".join(f"{q},{m},{s}\n" for q, m, s in rows))
    else:
        path.write_text("".join(json.dumps({"query": q, "model": m, "score": s}) + "\n" for q, m, s in rows))
    data = read_score_table(path, "test")
    assert data.queries == ("q one", "q two")
    assert data.labels.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    "scores, message",
    [
        ({"a": math.nan, "b": 0.1}, "not a number|outside 0-1"),
        ({"a": 1.5, "b": 0.1}, "outside 0-1"),
        ({"a": -0.1, "b": 0.1}, "outside 0-1"),
        ({"a": "high", "b": 0.1}, "not a number"),
        ({"a": 0.3}, "no score for b"),
    ],
)
def test_bad_scores_name_the_item(tmp_path, scores, message):
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"question": "ok", "scores": {"a": 0.1, "b": 0.1}}, {"question": "bad", "scores": scores}]))
    with pytest.raises(RoutingInputError, match=rf"t.json: item 1: .*({message})"):
        read_score_table(path, "test")


@pytest.mark.parametrize("results, routed", [
    ({"config": {"model": "hf", "model_args": "pretrained=gpt2"}}, False),
    ({"config": {"model": "routed", "routing": {"members": {}}}}, True),  # lm_eval --model routed
    ({"config": {"model": "routed", "routed_by": "routing-eval"}}, True),  # routing-eval --output-path / demo
    ({"config": {"model": "routed"}, "routing": {"members": {}}}, True),  # routing-eval's, before the mark
    ({"config": "not an object"}, False),
])
def test_routed_outputs_are_told_from_pool_members(results, routed):
    assert routed_output(results) is routed


def test_routed_outputs_written_anywhere_are_left_out_with_a_note(tmp_path):
    from lm_routing.judging.evaluate import Routed
    from lm_routing.reporting.comparison import write_routed_models
    from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

    pool = tuple(m for m in PAPER_POOL if m.name in ("gemma-7b", "gemma-7b-it"))
    logs = write_simulated_logs(tmp_path, pool=pool, splits={"train": {"gsm8k": 1, "mmlu": 1}, "test": {"gsm8k": 20, "mmlu": 1}})
    members = read_harness_logs(logs / "gsm8k")
    routed = Routed("knn", "argmax", np.full(members.labels.shape, 0.5), np.zeros(members.n_queries, dtype=int))
    write_routed_models(logs / "gsm8k" / "deep" / "down", members, [routed], "2026-01-01T00-00-00.0")
    again = read_harness_logs(logs / "gsm8k")
    assert again.models == members.models and np.array_equal(again.labels, members.labels)
    (note,) = [note for note in again.report.notes if note.code == "routed-runs-left-out"]
    assert note.fields["runs"] == 1 and "routed__knn__argmax" in note.fields["example"]
