"""lm-eval's log layout (lm_routing.reading.harness): names, document identity, and a written run read back."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from lm_eval.utils import hash_string

from lm_routing.data import RoutingInputError
from lm_routing.reading.harness import (
    TaskResults, doc_hash, doc_key, key_hash, log_files, read_results, results_document, run_files, run_samples,
    run_stamp, sample_record, sanitize_model_name, timestamp,
)


def test_timestamp_is_lm_evals_file_time():
    """lm-eval's EvaluationTracker names files with datetime.now().isoformat() with ':' as '-'."""
    at = dt.datetime(2026, 11, 25, 3, 37, 2, 181593)
    assert timestamp(at) == "2026-11-25T03-37-02.181593"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{6}", timestamp())


def test_doc_hash_is_the_evaluators_recipe():
    """The evaluator hashes json.dumps(doc, indent=2, ensure_ascii=False): key order and non-ASCII text matter."""
    doc = {"question": "Wie viel kostet ein Äpfel?", "answer": 3, "choices": ["a", "b"]}
    assert doc_hash(doc) == hash_string(json.dumps(doc, indent=2, ensure_ascii=False))
    assert doc_hash(doc) != doc_hash(dict(reversed(doc.items())))


def test_document_key_round_trip():
    doc = {"question": "q"}
    key = doc_key(doc, 7)
    assert key == f"{doc_hash(doc)}#7" and key_hash(key) == doc_hash(doc)
    assert key_hash("table.csv:line 3") is None


def test_model_folder_names():
    assert sanitize_model_name("routed:knn:argmax") == "routed__knn__argmax"
    assert sanitize_model_name("org/model-7b_v1.5") == "org__model-7b_v1.5"


def test_written_run_reads_back(tmp_path):
    """run_files' layout is what the reader expects: results beside one samples file per task, same stamp."""
    stamp = timestamp()
    records = [sample_record(i, {"question": f"q{i}"}, "1", [["x"]], ["1"], "answers", {"acc": 1.0}) for i in range(3)]
    document = results_document("org/model", {"model": "hf"}, {"task_a": TaskResults({"acc,none": 1.0}, {}, 3)}, 12.5)
    files = run_files(tmp_path, stamp, document, {"task_a": records})
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    results_files, sample_files = log_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in results_files] == [f"org__model/results_{stamp}.json"]
    assert run_stamp(results_files[0]) == stamp
    results, model = read_results(results_files[0])
    assert model == "org/model" and results["total_evaluation_time_seconds"] == 12.5
    assert results["n-samples"]["task_a"] == {"original": 3, "effective": 3}
    [(task, config, samples)] = run_samples(results_files[0], results)
    assert (task, config["task"], samples) == ("task_a", "task_a", sample_files[0])
    lines = [json.loads(line) for line in samples.open()]
    assert [line["doc_hash"] for line in lines] == [doc_hash({"question": f"q{i}"}) for i in range(3)]
    assert lines[0]["metrics"] == ["acc"] and lines[0]["acc"] == 1.0


def test_missing_samples_file_is_named(tmp_path):
    stamp = timestamp()
    document = results_document("m", {}, {"task_a": TaskResults({}, {}, 0)}, None)
    (path,) = [p for p in run_files(tmp_path, stamp, document, {}) if p.suffix == ".json"]
    path.parent.mkdir()
    path.write_text(json.dumps(document))
    with pytest.raises(RoutingInputError, match=f"task task_a has no samples_task_a_{stamp}.jsonl beside it"):
        run_samples(path, read_results(path)[0])

