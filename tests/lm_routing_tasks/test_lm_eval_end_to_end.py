"""The real `lm_eval` CLI runs our tasks on a tiny random model, offline."""

from __future__ import annotations

import json

import pytest

from conftest import run_lm_eval

pytestmark = pytest.mark.slow
PER_QUERY_FIELDS = {"maj@10", "first", "solve_rate", "invalid_rate", "majority"}


def _only(folder, pattern):
    files = sorted(folder.glob(pattern))
    assert len(files) == 1, files
    return files[0]


def _check_samples(path, n_docs):
    rows = [json.loads(line) for line in path.open()]
    assert len(rows) == n_docs
    for row in rows:
        assert PER_QUERY_FIELDS <= row.keys()
        assert row["filter"] == "answers"
        completions, answers = row["resps"][0], row["filtered_resps"][0]
        assert len(completions) == 10 and len(answers) == 10
        assert row["maj@10"] in (0.0, 1.0) and row["first"] in (0.0, 1.0)
        assert 0.0 <= row["solve_rate"] <= 1.0 and 0.0 <= row["invalid_rate"] <= 1.0
        assert row["invalid_rate"] == pytest.approx(answers.count("[invalid]") / 10)
        assert row["solve_rate"] == pytest.approx(sum(a == row["target"] for a in answers) / 10) or not row["target"].isdigit()
        assert row["majority"] == "[invalid]" or row["majority"] in answers
    return rows


def test_gsm8k_cot_maj10_logs_per_query_labels(harness_logs):
    model_dirs = sorted(p for p in harness_logs.iterdir() if p.is_dir())
    assert len(model_dirs) == 2
    for folder, task in zip(model_dirs, ("gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10")):
        rows = _check_samples(_only(folder, f"samples_{task}_*.jsonl"), n_docs=4)
        assert [r["target"] for r in rows] == ["18", "3", "70000", "540"]
        results = json.loads(_only(folder, "results_*.json").read_text())
        metrics = results["results"][task]
        assert {"maj@10,answers", "first,answers", "solve_rate,answers", "invalid_rate,answers"} <= metrics.keys()
        assert metrics["maj@10,answers"] == pytest.approx(sum(r["maj@10"] for r in rows) / 4)
        assert results["n-samples"][task] == {"original": 1319, "effective": 4}


def test_mmlu_cot_maj10_group_aggregates_57_subjects(tmp_path, tiny_lm, shared_data):
    out = tmp_path / "results"
    run_lm_eval(
        ["--model", "hf", "--model_args", f"pretrained={tiny_lm}", "--tasks", "mmlu_cot_maj10", "--limit", "1",
         "--gen_kwargs", "max_gen_toks=8", "--log_samples", "--output_path", str(out)],
        data_dir=shared_data, cwd=tmp_path,
    )
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    samples = sorted(folder.glob("samples_mmlu_cot_maj10_*.jsonl"))
    assert len(samples) == 57
    rows = [row for path in samples for row in _check_samples(path, n_docs=1)]
    assert {r["target"] for r in rows} <= set("ABCD")
    results = json.loads(_only(folder, "results_*.json").read_text())
    group = results["results"]["mmlu_cot_maj10"]
    assert group["maj@10,answers"] == pytest.approx(sum(r["maj@10"] for r in rows) / 57)
    assert group["solve_rate,answers"] == pytest.approx(sum(r["solve_rate"] for r in rows) / 57)
    assert len(results["group_subtasks"]["mmlu_cot_maj10"]) == 57
