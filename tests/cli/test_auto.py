"""`routing-eval` with no --router: the `auto` row first with its note; mixed streams from several tables;
the saved pick is what `predict` serves."""

from __future__ import annotations

import json

import numpy as np
import pytest

WORDS = ("apple", "river", "cloud", "stone", "green", "music", "table", "light", "sugar", "north")


def write_table(path, dataset: str, n: int, seed: int, best: str) -> None:
    """A RouterDC-format table: models x and y, `best` solving 75% of queries and the other 45%, whatever the text."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        strong, weak = rng.random() < 0.75, rng.random() < 0.45
        scores = {"x": float(strong), "y": float(weak)} if best == "x" else {"x": float(weak), "y": float(strong)}
        rows.append({"question": f"{dataset} question {i}: " + " ".join(rng.choice(WORDS, 5)), "scores": scores})
    path.write_text(json.dumps(rows))


@pytest.fixture(scope="module")
def mixed_tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    for seed, (dataset, best) in enumerate((("gsm8k", "x"), ("mmlu", "y"))):
        write_table(folder / f"{dataset}_train.json", dataset, 150, seed, best)
        write_table(folder / f"{dataset}_test.json", dataset, 150, seed + 10, best)
    return folder


def stream_args(folder) -> list:
    return ["--scores", folder / "gsm8k_train.json", "--scores", folder / "mmlu_train.json",
            "--test-scores", folder / "gsm8k_test.json", "--test-scores", folder / "mmlu_test.json",
            "--features", "tfidf"]


def test_default_router_is_auto_printed_first_with_its_note(mixed_tables, routing_eval):
    done = routing_eval(*stream_args(mixed_tables), "--policy", "argmax")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert lines[header + 2].startswith("router:auto ")
    note = next(line for line in lines if line.startswith("auto picked"))
    assert "best single model per dataset" in note and "runner-up" in note and "winner's inner-CV accuracy" in note
    assert "expected accuracy on 300 test queries" in note
    assert "train (300 queries) -> test (300 queries)" in done.stdout  # the four tables form one stream


def test_json_carries_the_pick_and_save_serves_it(mixed_tables, tmp_path, routing_eval):
    done = routing_eval(*stream_args(mixed_tables), "--policy", "argmax", "--json", "--save", tmp_path / "auto")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"][0]["method"] == "router:auto"
    assert report["auto"][0]["pick"]["kind"] == "per-dataset"
    queries = tmp_path / "q.txt"
    queries.write_text("gsm8k question 999: apple river\nmmlu question 999: cloud stone\n")
    served = routing_eval("predict", "--load", tmp_path / "auto", "--queries", queries)
    assert served.returncode == 0, served.stderr
    assert [line.split("\t")[0] for line in served.stdout.splitlines()] == ["x", "y"]  # each dataset's best model
    expected = report["auto"][0]["expected"]
    assert f"expected accuracy {100 * expected['accuracy']:.2f}%" in served.stderr  # saved with the pick
    assert expected["test_interval"][0] < expected["accuracy"] < expected["test_interval"][1]
    # a query's known dataset outranks its text: --dataset for --query, a 'dataset' field in JSONL
    named = tmp_path / "q.jsonl"
    named.write_text('{"question": "gsm8k question 999: apple", "dataset": "mmlu"}\n{"question": "mmlu question 9: cloud"}\n')
    served = routing_eval("predict", "--load", tmp_path / "auto", "--queries", named,
                          "--query", "mmlu question 7: river", "--dataset", "gsm8k")
    assert served.returncode == 0, served.stderr
    assert [line.split("\t")[0] for line in served.stdout.splitlines()] == ["x", "y", "x"]
    named.write_text('{"question": "gsm8k question 1", "dataset": 3}\n')
    refused = routing_eval("predict", "--load", tmp_path / "auto", "--queries", named)
    assert refused.returncode == 2 and f"{named}:1: 'dataset' is int" in refused.stderr


def test_dataset_narrows_a_mixed_stream(mixed_tables, routing_eval):
    done = routing_eval(*stream_args(mixed_tables), "--router", "knn", "--policy", "argmax", "--dataset", "mmlu", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["method"]: r for r in json.loads(done.stdout)["rows"]}
    assert rows["model:y"]["n"] == 150 and rows["model:y"]["accuracy"] > rows["model:x"]["accuracy"]
