"""`routing-eval audit` on the demo's simulated logs and on real lm_eval output of a tiny model."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from lm_routing_tasks.extraction import extract_gsm8k_answer
from lm_routing.reading.audit import audit_logs, format_audit
from lm_routing.reading.simulate import write_simulated_logs

SPLITS = {"train": {"gsm8k": 40, "mmlu": 40}, "test": {"gsm8k": 30, "mmlu": 30}}


def test_audit_of_the_demo_logs_counts_invalid_answers_and_says_what_it_cannot_know(tmp_path, routing_eval):
    logs = write_simulated_logs(tmp_path / "demo", seed=0, splits=SPLITS)
    rows = audit_logs(logs).rows
    samples = [json.loads(line) for path in sorted(logs.rglob("samples_*.jsonl")) for line in path.open()]
    assert sum(r.completions for r in rows) == sum(len(s["resps"][0]) for s in samples)
    invalid = sum(a == "[invalid]" for s in samples for a in s["filtered_resps"][0])
    assert sum(r.invalid * r.completions for r in rows) == pytest.approx(invalid)
    # the simulation logs neither until nor max_gen_toks nor a loadable model: the cap is unknown, not 0
    assert all(math.isnan(r.at_cap) and r.run_on == 0 and r.answer_after_marker == 0 for r in rows)
    shown = routing_eval("audit", "--logs", logs)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("gsm8k_cot_maj10") >= 1 and "n/a" in shown.stdout


@pytest.mark.slow
def test_audit_of_real_tiny_model_logs_measures_the_cap(harness_logs):
    rows = audit_logs(harness_logs).rows
    assert {r.task for r in rows} == {"gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10"}
    for row in rows:
        (samples,) = [p for p in harness_logs.rglob(f"samples_{row.task}_*.jsonl")]
        logged = [json.loads(line) for line in samples.open()]
        assert row.completions == 40 and row.max_gen_toks == 16
        assert row.invalid == pytest.approx(sum(s["invalid_rate"] for s in logged) / len(logged))
        # a random model rarely emits a stop or EOS within 16 tokens: most completions reach the cap
        assert 0.5 <= row.at_cap <= 1 and row.stopped == pytest.approx(1 - row.at_cap)


def test_audit_flags_labels_taken_from_an_invented_exemplar(tmp_path, harness_logs):
    """A real log rewritten as a run without our stops and with last-answer-wins extraction (task v1.0's flaw)."""
    logs = tmp_path / "logs"
    shutil.copytree(next(harness_logs.rglob("samples_gsm8k_cot_maj10_*.jsonl")).parent, logs / "model")
    (samples,) = logs.rglob("samples_gsm8k_cot_maj10_*.jsonl")
    rows = [json.loads(line) for line in samples.open()]
    run_on = "He has 12 - 5 = 7 left. The answer is 7.\n\nQ: Tom has 3 pens and buys 4. How many?\nA: The answer is 7 + 1 = 8."
    for row in rows[:2]:  # 2 of 4 documents: 5 of their 10 completions run on
        row["resps"][0][:5] = [run_on] * 5
        row["filtered_resps"][0][:5] = ["8"] * 5  # what last-wins read; the model's own answer is 7
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    audit = audit_logs(logs)
    (audited,) = audit.rows
    assert extract_gsm8k_answer(run_on) == "7"
    assert audited.run_on == pytest.approx(10 / 40) and audited.answer_after_marker == pytest.approx(10 / 40)
    assert audited.stop_left["\nQ:"] == pytest.approx(10 / 40)
    assert "stops still in the text" in format_audit(audit)
