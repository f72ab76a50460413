"""A plain `lm_eval` sees our tasks after `pip install`, and survives our absence."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import _lm_routing_hook
from lm_routing_tasks import TASK_DIR

OUR_TASKS = [
    "gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10", "gsm8k_cot_maj10_train", "gsm8k_cot_zeroshot_maj10_train",
    "mmlu_cot_maj10", "mmlu_cot_zeroshot_maj10", "mmlu_cot_maj10_train", "mmlu_cot_zeroshot_maj10_train",
]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_task_manager_without_include_path_finds_our_tasks():
    from lm_eval.tasks import TaskManager

    names = set(TaskManager().all_tasks)
    assert set(OUR_TASKS) <= names
    assert "mmlu_cot_maj10_abstract_algebra" in names
    assert "gsm8k_cot" in names  # lm-eval's own tasks are still there


@pytest.mark.parametrize("include_path", [str(TASK_DIR), [str(TASK_DIR)], TASK_DIR])
def test_explicit_include_path_of_our_folder_still_works(include_path):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path)
    assert set(OUR_TASKS) <= set(manager.all_tasks)


def test_include_path_is_not_duplicated():
    assert _lm_routing_hook._with_our_tasks(str(TASK_DIR), str(TASK_DIR)) == [str(TASK_DIR)]
    assert _lm_routing_hook._with_our_tasks(None, str(TASK_DIR)) == [str(TASK_DIR)]
    assert _lm_routing_hook._with_our_tasks(["/x"], str(TASK_DIR)) == ["/x", str(TASK_DIR)]


@pytest.mark.slow
def test_lm_eval_cli_lists_our_tasks():
    lm_eval = [sys.executable, "-m", "lm_eval"]
    listed = subprocess.run([*lm_eval, "ls", "tasks"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    for name in [*OUR_TASKS, "lm_routing", "lm_routing_gsm8k", "lm_routing_mmlu", "lm_routing_train"]:
        assert f"|{name} " in listed.stdout


def test_hook_is_installed_at_start_up_without_importing_lm_eval():
    probe = _python("import sys; print('lm_eval' in sys.modules, any(type(f).__name__ == '_Finder' for f in sys.meta_path))")
    assert probe.stdout.split() == ["False", "True"]


def test_lm_eval_still_works_when_our_package_is_gone():
    # The .pth stays behind but lm_routing_tasks cannot be imported: lm_eval must not notice.
    probe = _python(
        "import sys; sys.modules['lm_routing_tasks'] = None\n"
        "from lm_eval.tasks import TaskManager\n"
        "names = TaskManager().all_tasks\n"
        "print('gsm8k_cot' in names, 'gsm8k_cot_maj10' in names)"
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split() == ["True", "False"]


def test_broken_hook_module_does_not_break_python():
    line = (TASK_DIR.parent.parent / "lm_routing.pth").read_text()
    probe = _python("import sys; sys.modules['_lm_routing_hook'] = None\n" + line + "print('ok')")
    assert probe.returncode == 0 and probe.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager()


@pytest.mark.parametrize(
    ("tag", "families"),
    [
        ("lm_routing", {"gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10", "mmlu_cot_maj10", "mmlu_cot_zeroshot_maj10"}),
        ("lm_routing_gsm8k", {"gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10"}),
        ("lm_routing_mmlu", {"mmlu_cot_maj10", "mmlu_cot_zeroshot_maj10"}),
        ("lm_routing_train", {"gsm8k_cot_maj10_train", "gsm8k_cot_zeroshot_maj10_train", "mmlu_cot_maj10_train",
                              "mmlu_cot_zeroshot_maj10_train"}),
    ],
)
def test_tags_resolve_to_every_task_of_their_families(task_manager, tag, families):
    """lm-eval resolves tags from task YAMLs only (a group's `tag:` is ignored): the tag reaches MMLU's 57 subjects."""
    from lm_eval.tasks._index import Kind

    from lm_routing_tasks.mmlu_tasks import SUBJECTS, subject_task

    manager = task_manager
    assert tag in manager.all_tags
    expected = {
        name
        for family in families
        for name in ([subject_task(family, s) for s in SUBJECTS] if family.startswith("mmlu") else [family])
    }
    entry = manager.task_index[tag]
    assert entry.kind is Kind.TAG and entry.tags == expected


@pytest.mark.slow
def test_lm_eval_runs_every_family_from_the_lm_routing_tag(tmp_path, shared_data):
    """`lm_eval --tasks lm_routing` runs GSM8K and both MMLU families (116 tasks), offline on local data."""
    from conftest import run_lm_eval

    from lm_routing_tasks.mmlu_tasks import SUBJECTS

    run_lm_eval(["--model", "dummy", "--tasks", "lm_routing", "--limit", "1", "--output_path", str(tmp_path / "out")],
                data_dir=shared_data, cwd=tmp_path)
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    ran = set(json.loads(results_file.read_text())["configs"])
    assert {"gsm8k_cot_maj10", "gsm8k_cot_zeroshot_maj10"} <= ran
    for family in ("mmlu_cot_maj10", "mmlu_cot_zeroshot_maj10"):
        assert {f"{family}_{s}" for s in SUBJECTS} <= ran
    assert len(ran) == 2 + 2 * len(SUBJECTS)
