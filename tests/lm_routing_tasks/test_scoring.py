"""Scoring with fixed completions, through the real lm-eval task objects (no model)."""

from __future__ import annotations

import pytest

from lm_routing_tasks import majority_vote, score_samples
from lm_routing_tasks.scoring import INVALID, gsm8k_target, majority_share, parseable_share


def test_majority_vote_ignores_unparseable_and_breaks_ties_by_first_sample():
    assert majority_vote(["7", None, "9", "9", "7"]) == "7"  # 2-2 tie: '7' came first
    assert majority_vote([None, INVALID, "4"]) == "4"
    assert majority_vote([None, INVALID]) is None
    assert majority_vote([]) is None


def test_score_samples_exact_values():
    answers = ["18", "17", INVALID, "18", "18", "3", INVALID, "18", "17", "17"]
    assert score_samples(answers, "18") == {
        "maj@10": 1.0, "first": 1.0, "solve_rate": 0.4, "invalid_rate": 0.2, "majority": "18",
    }
    assert score_samples(answers, "17") == {
        "maj@10": 0.0, "first": 0.0, "solve_rate": 0.3, "invalid_rate": 0.2, "majority": "18",
    }
    assert score_samples([INVALID] * 4, "1") == {
        "maj@4": 0.0, "first": 0.0, "solve_rate": 0.0, "invalid_rate": 1.0, "majority": INVALID,
    }
    with pytest.raises(ValueError):
        score_samples([], "1")


def test_majority_share_counts_unparseable_samples_in_k():
    assert majority_share(["18", "17", INVALID, "18", "18", "3", INVALID, "18", "17", "17"]) == 0.4
    assert majority_share(["7", None, "9", "9", "7"]) == 0.4  # 2-2 tie: still 2 of 5
    assert majority_share(["5", "5"]) == 1.0
    assert majority_share([INVALID, None, INVALID]) == 0.0
    with pytest.raises(ValueError):
        majority_share([])


def test_gsm8k_target_is_normalised():
    assert gsm8k_target({"answer": "so 1,000 + 250 = 1,250\n#### 1,250"}) == "1250"
    with pytest.raises(ValueError, match="####"):
        gsm8k_target({"answer": "no final line"})


def test_parseable_share():
    assert parseable_share(["1", INVALID, "2", "3"]) == 0.75
    assert parseable_share([]) == 0.0


def _task(name, shared_data, monkeypatch):
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("LM_ROUTING_DATA", str(shared_data))
    loaded = TaskManager().load([name])["tasks"]
    return next(iter(loaded.values()))


def _score_fixed(task, completions_per_doc):
    """Feed fixed completions through the task's own filters and process_results."""
    task.build_all_requests(limit=len(completions_per_doc), rank=0, world_size=1)
    by_doc = {inst.doc_id: inst for inst in task.instances}
    assert len(by_doc) == len(completions_per_doc)
    for doc_id, completions in enumerate(completions_per_doc):
        by_doc[doc_id].resps = list(completions)
    task.apply_filters()
    return [
        task.process_results(by_doc[i].doc, [by_doc[i].filtered_resps["answers"]])
        for i in range(len(completions_per_doc))
    ]


def test_gsm8k_task_scores_fixed_completions_exactly(shared_data, monkeypatch):
    task = _task("gsm8k_cot_maj10", shared_data, monkeypatch)
    first_doc = ["Janet sells 9 eggs, 9 * 2 = 18. The answer is 18."] * 3 + ["The answer is $18.00"] \
        + ["She makes 16 dollars. The answer is 16."] * 4 + ["I am not sure.", "#### 18"]
    second_doc = ["2 + 1 = 3 bolts. The answer is 4."] * 6 + ["The answer is 3."] * 4
    first, second = _score_fixed(task, [first_doc, second_doc])
    assert first == {"maj@10": 1.0, "first": 1.0, "solve_rate": 0.5, "invalid_rate": 0.1, "majority": "18"}
    assert second == {"maj@10": 0.0, "first": 0.0, "solve_rate": 0.4, "invalid_rate": 0.0, "majority": "4"}


def test_mmlu_task_scores_fixed_completions_exactly(shared_data, monkeypatch):
    task = _task("mmlu_cot_maj10_anatomy", shared_data, monkeypatch)
    assert task.doc_to_target(task.test_docs()[0]) == "A"
    completions = ["Step by step... The answer is (A)."] * 4 + ["answer: b"] * 3 + ["**C**"] * 2 + ["hmm"]
    (scores,) = _score_fixed(task, [completions])
    assert scores == {"maj@10": 1.0, "first": 1.0, "solve_rate": 0.4, "invalid_rate": 0.1, "majority": "A"}
