"""Labels of run-on and multi-paragraph completions, through lm-eval's own stop handling and task filters.

The corpus (`data/completions.jsonl`, written for this project) holds 60 completions per
dataset: a model's own solution (one paragraph in the few-shot style, several in the chat
style) followed by an invented next exemplar in one of the styles base models produce
("\\n\\nQ:", "\\nQuestion:", "\\nProblem:", numbered, bold, markdown heading, MMLU's task
description) that carries another answer, or by nothing (the model stopped with EOS).
Each is cut by `lm_eval.models.utils.postprocess_generated_text` with the real task's
`until`, then labelled by the real task's filter and `process_results`, as lm-eval does.
"""

from __future__ import annotations

from pathlib import Path

import jsonlines
import pytest

from lm_routing_tasks.extraction import new_exemplar_start

CORPUS = Path(__file__).parent / "data" / "completions.jsonl"
ROWS = list(jsonlines.open(CORPUS))
TASKS = {
    "gsm8k": ("gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10"),
    "mmlu": ("mmlu_cot_maj10_college_biology", "mmlu_cot_zeroshot_maj10_college_biology"),
}


@pytest.fixture(scope="module")
def tasks(shared_data, monkeypatch_module):
    from lm_eval.tasks import TaskManager

    monkeypatch_module.setenv("LM_ROUTING_DATA", str(shared_data))
    return TaskManager().load([name for names in TASKS.values() for name in names])["tasks"]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _label(task, completion: str, doc: dict) -> tuple[str, str, dict]:
    """(text after lm-eval's stops, the filter's answer, process_results' metrics) for 10 copies."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.utils import postprocess_generated_text

    gen_kwargs = task.config.generation_kwargs
    cut = postprocess_generated_text(completion, gen_kwargs["until"], None)
    instance = Instance(request_type="generate_until", doc=doc, arguments=("", gen_kwargs), idx=0)
    instance.resps = [cut] * 10
    (ensemble,) = task._filters
    ensemble.apply([instance])
    answers = instance.filtered_resps[ensemble.name]
    return cut, answers[0], task.process_results(doc, [answers])


def test_corpus_has_40_run_on_and_paragraph_completions_per_dataset():
    for dataset in TASKS:
        rows = [r for r in ROWS if r["dataset"] == dataset]
        assert len(rows) >= 40
        assert len({r["id"] for r in rows}) == len(rows)
        run_on = [r for r in rows if r["runon"] != "none"]
        # the corpus can catch a last-answer-wins extractor: most invented exemplars answer otherwise
        assert sum(r["invented_answer"] not in (None, r["answer"]) for r in run_on) >= 35
        assert sum("\n\n" in r["solution"] for r in rows) >= 20  # reasoning in paragraphs
        assert len({r["runon"] for r in run_on}) >= 8  # prompt styles


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_completion_is_labelled_with_the_models_own_answer(tasks, row):
    for name in TASKS[row["dataset"]]:
        cut, answer, metrics = _label(tasks[name], row["completion"], row["doc"])
        assert answer == row["answer"], (name, cut)
        assert metrics["maj@10"] == 1.0 and metrics["invalid_rate"] == 0.0
        # no reasoning is lost: every paragraph of the model's own solution survives the stops
        assert cut.startswith(row["solution"]), name
        if new_exemplar_start(row["completion"]) is not None and row["runon"].strip() in ("Q:", "Question:", "Problem:"):
            assert cut.strip() == row["solution"].strip(), name  # a plain marker is cut by the stops themselves


def test_every_task_variant_stops_alike(tasks):
    """Few-shot and zero-shot, GSM8K and MMLU: the same new-exemplar stops, no blank-line stop."""
    for name, task in tasks.items():
        until = task.config.generation_kwargs["until"]
        assert "\n\n" not in until, name
        assert {"\nQ:", "\nQuestion:", "\nProblem:"} <= set(until), name
        assert task.config.metadata["version"] == 2.0, name


def test_train_variants_inherit_the_stops():
    from lm_eval.tasks import TaskManager

    index = TaskManager().task_index
    for base in ("gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10"):
        from lm_eval.tasks._yaml_loader import load_yaml

        config = load_yaml(index[f"{base}_train"].yaml_path, resolve_func=False)
        assert config["generation_kwargs"] == load_yaml(index[base].yaml_path, resolve_func=False)["generation_kwargs"]
