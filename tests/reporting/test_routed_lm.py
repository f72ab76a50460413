"""`lm_eval --model routed`: live dispatch to real HF members, and exact replay of logs.

The pool is two tiny GPT-2s trained here to answer every GSM8K question with
"The answer is 7." or "... 8.", on a copy of real GSM8K questions whose answers
are rewritten to 7 (questions about hours or minutes) or 8 (the rest), so each
member solves different questions and a router has something to learn.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from lm_routing.reading.logs import query_text, read_harness_logs
from lm_routing.reporting.routed_lm import ROUTING_KEY, ReplayLogs, RoutedLM, doc_key, parse_members, routing_record
from lm_routing.saved import load_router
from lm_routing.data import RoutingInputError
from conftest import build_answer_lm, run_lm_eval

LIMIT = 12


def _says_seven(question: str) -> bool:
    return "hours" in question or "minutes" in question


def _relabelled_gsm8k(source: Path, target: Path, per_split: int) -> None:
    """Alternate 7- and 8-questions so that any --limit holds both kinds."""
    (target / "gsm8k").mkdir(parents=True)
    for split in ("train", "test"):
        rows = [json.loads(line) for line in (source / "gsm8k" / f"{split}.jsonl").open()]
        sevens = [r for r in rows if _says_seven(r["question"])][:per_split]
        eights = [r for r in rows if not _says_seven(r["question"])][:per_split]
        with (target / "gsm8k" / f"{split}.jsonl").open("w") as out:
            for seven, eight in zip(sevens, eights):
                for row, answer in ((seven, 7), (eight, 8)):
                    out.write(json.dumps({"question": row["question"], "answer": f"#### {answer}"}) + "\n")


@pytest.fixture(scope="session")
def answer_pool(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("answer_pool")
    data = root / "data"
    _relabelled_gsm8k(shared_data, data, per_split=LIMIT)
    questions = [json.loads(line)["question"] for line in (data / "gsm8k" / "train.jsonl").open()]
    members = {answer: build_answer_lm(root / f"says{answer}", questions, answer, seed=answer) for answer in (7, 8)}
    logs = root / "logs"
    for member in members.values():
        run_lm_eval(
            ["--model", "hf", "--model_args", f"pretrained={member}", "--tasks", "gsm8k_cot_maj10,gsm8k_cot_maj10_train",
             "--limit", str(LIMIT), "--batch_size", "16", "--gen_kwargs", "max_gen_toks=12",
             "--log_samples", "--output_path", str(logs)],
            data_dir=data, cwd=root,
        )
    return SimpleNamespace(root=root, data=data, members=members, logs=logs)


@pytest.fixture(scope="session")
def saved_router(answer_pool, routing_eval) -> Path:
    """lr trained by routing-eval on the members' logs of the train split."""
    folder = answer_pool.root / "router-lr"
    done = routing_eval("--logs", answer_pool.logs, "--router", "lr", "--policy", "argmax", "--save", folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="session")
def table_router(answer_pool, shared_data, routing_eval) -> Path:
    """lr trained by routing-eval on a score table of 200 questions, more than the logs hold."""
    rows = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "train.jsonl").open()]
    picked = [q for q in rows if _says_seven(q)][:100] + [q for q in rows if not _says_seven(q)][:100]
    seven, eight = str(answer_pool.members[7]), str(answer_pool.members[8])
    table = [{"question": q, "scores": {seven: float(_says_seven(q)), eight: float(not _says_seven(q))}} for q in picked]
    (answer_pool.root / "table.json").write_text(json.dumps(table))
    folder = answer_pool.root / "router-table-lr"
    done = routing_eval("--scores", answer_pool.root / "table.json", "--router", "lr", "--policy", "argmax", "--save", folder)
    assert done.returncode == 0, done.stderr
    return folder


def _routed_run(pool, router: Path, extra: str, out: Path, limit: int) -> tuple[dict, list[dict]]:
    run_lm_eval(
        ["--model", "routed", "--model_args", f"router={router}{extra}", "--tasks", "gsm8k_cot_maj10",
         "--limit", str(limit), "--batch_size", "16", "--gen_kwargs", "max_gen_toks=12",
         "--log_samples", "--output_path", str(out)],
        data_dir=pool.data, cwd=pool.root,
    )
    (results_path,) = out.rglob("results_*.json")
    (samples_path,) = out.rglob("samples_gsm8k_cot_maj10_*.jsonl")
    return json.loads(results_path.read_text()), [json.loads(line) for line in samples_path.open()]


def test_live_routing_dispatches_each_document_to_the_chosen_member(answer_pool, table_router, tmp_path):
    results, samples = _routed_run(answer_pool, table_router, "", tmp_path / "live", limit=4)
    router, pool = load_router(table_router)
    expected = router.predict_proba([query_text(s["doc"]) for s in samples]).argmax(axis=1)
    says = {str(path): answer for answer, path in answer_pool.members.items()}
    for sample, j in zip(samples, expected):
        record = routing_record(sample)
        assert record[ROUTING_KEY] == pool[j]
        assert set(record["router_scores"]) == set(pool)
        # the answers come from that member: the 7-model says 7, the 8-model says 8
        assert sample["majority"] == str(says[pool[j]])
    routing = results["config"]["routing"]
    assert routing["mode"] == "live" and routing["documents"] == 4
    counts = {name: use["documents"] for name, use in routing["members"].items()}
    assert counts == {name: int((expected == j).sum()) for j, name in enumerate(pool)}
    assert all(count > 0 for count in counts.values()), "this router sends some documents to each member"
    assert all(use["requests"] == 10 * use["documents"] for use in routing["members"].values())
    assert all(use["seconds"] > 0 for use in routing["members"].values())


def test_replay_reproduces_routing_eval_exactly(answer_pool, saved_router, routing_eval, tmp_path):
    figures = routing_eval("--logs", answer_pool.logs, "--load", saved_router, "--policy", "argmax", "--json")
    assert figures.returncode == 0, figures.stderr
    rows = json.loads(figures.stdout)["rows"]
    (row,) = [r for r in rows if r["method"] == "router:loaded:router-lr:argmax"]
    results, samples = _routed_run(answer_pool, saved_router, f",replay={answer_pool.logs}", tmp_path / "replay", LIMIT)
    replayed = results["results"]["gsm8k_cot_maj10"]["maj@10,answers"]
    assert row["n"] == LIMIT and round(replayed * LIMIT) == round(row["accuracy"] * LIMIT)  # the same documents solved
    assert replayed == pytest.approx(row["accuracy"], abs=1e-6)  # routing-eval prints 6 decimals
    assert 0 < replayed < 1, "labels split between the members, so the figure says something"
    routing = results["config"]["routing"]
    assert routing["mode"] == "replay" and routing["documents"] == LIMIT
    assert sum(use["seconds"] for use in routing["members"].values()) == pytest.approx(routing["seconds"])
    # each document's answers are the chosen member's logged ones, sample for sample
    logged = {}
    for path in answer_pool.logs.rglob("samples_gsm8k_cot_maj10_2*.jsonl"):
        model = json.loads(next(path.parent.glob("results_*.json")).read_text())["model_name"]
        for line in path.open():
            entry = json.loads(line)
            logged[(model, entry["doc_hash"])] = entry["resps"]
    for sample in samples:
        member = routing_record(sample)[ROUTING_KEY]
        assert sample["resps"] == logged[(member, sample["doc_hash"])]
    # written next to the members' logs, the routed run is left out of the pool, with a note
    together = tmp_path / "together"
    shutil.copytree(answer_pool.logs, together)
    shutil.copytree(tmp_path / "replay", together / "routed")
    data = read_harness_logs(together)
    assert set(data.models) == {str(m) for m in answer_pool.members.values()}
    assert any(note.code == "routed-runs-left-out" and note.fields["runs"] == 1 for note in data.report.notes)


def test_replay_refuses_logs_without_the_member(answer_pool, saved_router, tmp_path):
    only_one = tmp_path / "one"
    source = next(p for p in answer_pool.logs.iterdir() if p.is_dir())
    (only_one / source.name).mkdir(parents=True)
    for path in source.iterdir():
        (only_one / source.name / path.name).write_bytes(path.read_bytes())
    with pytest.raises(RoutingInputError, match="no logs of .*, which the router routes to"):
        RoutedLM(router=str(saved_router), replay=str(only_one))


def test_replay_refuses_documents_the_logs_lack(answer_pool, saved_router, tmp_path):
    with pytest.raises(AssertionError, match="has no logged answer to doc_id 12 of gsm8k_cot_maj10"):
        _routed_run(answer_pool, saved_router, f",replay={answer_pool.logs}", tmp_path / "more", LIMIT + 1)


def test_model_args_are_checked(saved_router):
    with pytest.raises(RoutingInputError, match="unknown model_args bogus"):
        RoutedLM(router=str(saved_router), bogus=1)
    with pytest.raises(RoutingInputError, match="policy=stacked is fitted on labels"):
        RoutedLM(router=str(saved_router), policy="stacked")
    with pytest.raises(RoutingInputError, match="not a router saved by routing-eval save_dir"):
        RoutedLM(router=str(saved_router.parent))


def test_members_default_to_hf_on_the_pool_names_and_can_be_overridden(tmp_path):
    pool = ("org/a", "org/b")
    specs = parse_members(None, pool)
    assert specs["org/a"].model == "hf" and specs["org/a"].model_args == {"pretrained": "org/a"}
    file = tmp_path / "members.json"
    file.write_text(json.dumps({"org/b": {"model": "vllm", "model_args": "pretrained=/w/b,dtype=float16"}}))
    specs = parse_members(str(file), pool)
    assert specs["org/b"].model == "vllm" and specs["org/b"].model_args == "pretrained=/w/b,dtype=float16"
    assert parse_members({"org/a": "pretrained=/w/a"}, pool)["org/a"].model_args == "pretrained=/w/a"
    with pytest.raises(RoutingInputError, match="members names org/c, which the router does not route to"):
        parse_members({"org/c": "pretrained=x"}, pool)
    with pytest.raises(RoutingInputError, match="no such file"):
        parse_members(str(tmp_path / "absent.json"), pool)


def _choice_task(folder: Path, data: Path) -> None:
    """A local multiple-choice task: lm-eval asks for one loglikelihood per answer choice."""
    folder.mkdir()
    (folder / "answer_choice.yaml").write_text(
        "task: answer_choice\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data / 'gsm8k' / 'test.jsonl'}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Q: {{question}}\\nA: The answer is"\n'
        'doc_to_choice: [" 7", " 8"]\n'
        "doc_to_target: \"{{0 if answer.endswith('7') else 1}}\"\n"
        "metric_list:\n  - metric: acc\n"
    )


def test_loglikelihood_requests_of_a_document_all_go_to_its_member(answer_pool, table_router, tmp_path):
    tasks = tmp_path / "tasks"
    _choice_task(tasks, answer_pool.data)
    common = ["--tasks", "answer_choice", "--include_path", str(tasks), "--limit", "4", "--log_samples"]
    run_lm_eval(["--model", "routed", "--model_args", f"pretrained={table_router}", *common,
                 "--output_path", str(tmp_path / "routed")], data_dir=answer_pool.data, cwd=tmp_path)
    (samples_path,) = (tmp_path / "routed").rglob("samples_answer_choice_*.jsonl")
    routed = [json.loads(line) for line in samples_path.open()]
    # `pretrained=` names lm-eval's output folder after the router
    assert samples_path.parent.name.endswith(table_router.name)
    alone = {}
    for answer, member in answer_pool.members.items():
        out = tmp_path / f"alone{answer}"
        run_lm_eval(["--model", "hf", "--model_args", f"pretrained={member}", *common, "--output_path", str(out)],
                    data_dir=answer_pool.data, cwd=tmp_path)
        (path,) = out.rglob("samples_answer_choice_*.jsonl")
        alone[str(member)] = {row["doc_id"]: row for row in map(json.loads, path.open())}
    members = set()
    for sample in routed:
        member = routing_record(sample)[ROUTING_KEY]
        members.add(member)
        per_choice = sample["arguments"]
        assert len(per_choice) == 2
        assert all(list(request.values())[-1][ROUTING_KEY] == member for request in per_choice.values())
        own = alone[member][sample["doc_id"]]
        for got, want in zip(sample["resps"], own["resps"]):
            assert got[0][0] == pytest.approx(want[0][0], abs=1e-4) and got[0][1] == want[0][1]
    assert len(members) == 2


def _write_run(folder: Path, model: str, task: str, rows: list[dict], seconds=2.0) -> None:
    folder.mkdir(parents=True)
    results = {"model_name": model, "configs": {task: {}}, "results": {task: {}}, "total_evaluation_time_seconds": seconds}
    (folder / "results_2026-01-01T00-00-00.json").write_text(json.dumps(results))
    (folder / f"samples_{task}_2026-01-01T00-00-00.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_replay_logs_index_answers_by_model_and_document(tmp_path):
    doc = {"question": "q?"}
    key = doc_key(doc, 0)
    row = {"doc_id": 0, "doc": doc, "doc_hash": key.split("#")[0], "resps": [["a", "b"]], "filter": "answers"}
    _write_run(tmp_path / "m1", "m1", "t", [row, {**row, "filter": "other"}], seconds=3.0)
    _write_run(tmp_path / "m2", "m2", "t", [row], seconds=float("nan"))
    logs = ReplayLogs.read(tmp_path)
    assert logs.lookup("m1", key, "t", 0).resps == [["a", "b"]]
    assert logs.lookup("m1", key, "t", 0).seconds == 3.0  # one document: the run's whole time
    assert logs.lookup("m2", key, "t", 0).seconds != logs.lookup("m2", key, "t", 0).seconds  # NaN: unknown
    with pytest.raises(RoutingInputError, match="m1 has no logged answer to doc_id 1 of t"):
        logs.lookup("m1", doc_key(doc, 1), "t", 1)
    _write_run(tmp_path / "m1b", "m1", "u", [row])
    logs = ReplayLogs.read(tmp_path)
    assert logs.lookup("m1", key, "u", 0).task == "u"  # the run of the asked task wins
    with pytest.raises(RoutingInputError, match=r"answered doc_id 0 in several tasks \(t, u\), none of them v"):
        logs.lookup("m1", key, "v", 0)


@pytest.mark.parametrize("break_it, message", [
    (lambda folder: (folder / "samples_t_2026-01-01T00-00-00.jsonl").unlink(), "has no samples_t_.*--log_samples"),
    (lambda folder: (folder / "samples_t_2026-01-01T00-00-00.jsonl").write_text('{"doc": {}}\n'),
     r"samples_t_.*jsonl:1: sample lacks doc, doc_hash or resps"),
    (lambda folder: (folder / "samples_t_2026-01-01T00-00-00.jsonl").write_text('{"doc": \n'), r"jsonl:1: malformed JSON line"),
    (lambda folder: (folder / "results_2026-01-01T00-00-00.json").write_text("[]"), "not an lm-eval results file"),
])
def test_replay_logs_refuse_broken_files_in_one_line(tmp_path, break_it, message):
    row = {"doc_id": 0, "doc": {"question": "q"}, "doc_hash": "h", "resps": [["a"]]}
    _write_run(tmp_path / "m", "m", "t", [row])
    break_it(tmp_path / "m")
    with pytest.raises(RoutingInputError, match=message):
        ReplayLogs.read(tmp_path)
    with pytest.raises(RoutingInputError, match="no such folder"):
        ReplayLogs.read(tmp_path / "absent")


@pytest.mark.parametrize("content, message", [
    ('{"org/a": ', r"members.json:1: not valid JSON"),
    ('["org/a"]', r"members.json: expected a JSON object"),
    ('{"org/a": 3}', r"the entry of org/a must be model_args text or \{model, model_args\}"),
    ('{"org/a": {"model": "hf", "model_args": 3}}', r"the entry of org/a must be"),
])
def test_bad_members_files_are_named_with_the_fix(tmp_path, content, message):
    file = tmp_path / "members.json"
    file.write_text(content)
    with pytest.raises(RoutingInputError, match=message):
        parse_members(str(file), ("org/a", "org/b"))


def test_every_reader_walks_runs_alike_routed_outputs_skipped_stray_files_named(tmp_path):
    """One walk (lm_routing.reading.harness.harness_runs) serves the pool's reader, the audit and the replay:
    a routed output is no pool member for any of them, and a samples file of no run stops each of them."""
    from lm_routing.reading.audit import audit_logs, format_audit
    from lm_routing.reading.harness import ROUTED_MARK

    doc = {"question": "q?"}
    key = doc_key(doc, 0)
    row = {"doc_id": 0, "doc": doc, "doc_hash": key.split("#")[0], "resps": [["a"]], "filtered_resps": ["a"],
           "target": "a", "filter": "answers"}
    _write_run(tmp_path / "m1", "m1", "t", [row])
    _write_run(tmp_path / "routed", "router:knn", "t", [row])
    results = tmp_path / "routed" / "results_2026-01-01T00-00-00.json"
    results.write_text(json.dumps({**json.loads(results.read_text()), "config": {ROUTED_MARK: "routing-eval"}}))
    assert set(ReplayLogs.read(tmp_path).answers) == {"m1"}
    audit = audit_logs(tmp_path)
    assert {r.model for r in audit.rows} == {"m1"} and audit.routed == (results,)
    assert f"left out 1 routed output(s) (e.g. {results})" in format_audit(audit)
    (tmp_path / "m1" / "samples_t_2025-05-05T00-00-00.jsonl").write_text(json.dumps(row) + "\n")
    for read in (ReplayLogs.read, audit_logs):
        with pytest.raises(RoutingInputError, match=r"samples_t_2025-05-05T00-00-00.jsonl: no results_<time>.json of the same run"):
            read(tmp_path)
